package devstripe

import "time"

// SetNow sets the dev Stripe's clock, for tests of what expires.
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}
