// Package soak is dunning's chaos soak: the real binaries (two workers,
// two webhooks), a Temporal dev server on a SQLite file and stateful
// stand-ins for every peer, under steady Stripe-like traffic while
// processes, Temporal and peers fail on a random schedule; then a drain
// and an audit of everything the peers saw against what was sent.
//
// It is a test behind the build tag soak, run by `make soak`
// (SOAK_DURATION, default 10m); docs/reliability.md says what it checks.
package soak
