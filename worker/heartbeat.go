package worker

import (
	"context"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
)

// Heartbeats returns the worker interceptor that keeps every activity
// with a heartbeat timeout heartbeating while it runs, a third of that
// timeout apart: a slow call to a peer goes on for as long as its
// start-to-close timeout allows, while an activity whose worker died is
// noticed by the server after the heartbeat timeout and tried again on
// another worker. An activity's own heartbeats, and their progress
// details, pass through; the beats in between repeat the last details, so
// that a retry still finds the progress.
func Heartbeats() interceptor.WorkerInterceptor { return &heartbeats{} }

type heartbeats struct {
	interceptor.WorkerInterceptorBase
}

func (*heartbeats) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	in := &heartbeatInbound{}
	in.Next = next
	return in
}

// heartbeatInbound is one activity execution's.
type heartbeatInbound struct {
	interceptor.ActivityInboundInterceptorBase
	out *heartbeatOutbound
}

func (i *heartbeatInbound) Init(outbound interceptor.ActivityOutboundInterceptor) error {
	i.out = &heartbeatOutbound{}
	i.out.Next = outbound
	return i.Next.Init(i.out)
}

// minBeat bounds how often the interceptor heartbeats, whatever the
// timeout; the SDK batches beats closer than 80% of the timeout anyway.
const minBeat = 200 * time.Millisecond

func (i *heartbeatInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	timeout := activity.GetInfo(ctx).HeartbeatTimeout
	if timeout <= 0 {
		return i.Next.ExecuteActivity(ctx, in)
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(max(timeout/3, minBeat))
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				i.out.beat(ctx)
			}
		}
	}()
	defer func() {
		close(stop)
		<-stopped
	}()
	return i.Next.ExecuteActivity(ctx, in)
}

// heartbeatOutbound keeps the details of the activity's own last
// heartbeat, to repeat them. Beats are sent one at a time, so that a
// repeat never overtakes newer details.
type heartbeatOutbound struct {
	interceptor.ActivityOutboundInterceptorBase
	mu      sync.Mutex
	details []any
}

func (o *heartbeatOutbound) RecordHeartbeat(ctx context.Context, details ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.details = details
	o.Next.RecordHeartbeat(ctx, details...)
}

func (o *heartbeatOutbound) beat(ctx context.Context) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.Next.RecordHeartbeat(ctx, o.details...)
}
