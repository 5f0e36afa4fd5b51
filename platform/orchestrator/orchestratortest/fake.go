// Package orchestratortest provides an in-memory Temporal stand-in for tests
// of the orchestrator: it remembers which workflows exist, answers
// "already started" for duplicates, and can be switched down.
package orchestratortest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/stampede-dev/stampede/platform/orchestrator"
	"github.com/stampede-dev/stampede/platform/saga"
)

// ErrDown is what the fake returns while it is down.
var ErrDown = errors.New("orchestratortest: temporal unavailable")

// Temporal is a fake Starter and Signaler.
type Temporal struct {
	mu      sync.Mutex
	down    bool
	started []saga.Input // in start order, one per workflow
	ids     map[string]bool
	calls   int
	failed  int
	signals []Signal
	refuse  map[string]bool
}

// Signal is one delivered signal the fake received.
type Signal struct {
	OrderID string
	saga.DeliveredSignal
}

var (
	_ orchestrator.Starter  = (*Temporal)(nil)
	_ orchestrator.Signaler = (*Temporal)(nil)
)

// New returns an empty, reachable fake.
func New() *Temporal { return &Temporal{ids: map[string]bool{}} }

// SetDown makes every call fail with ErrDown (true) or succeed again (false).
func (t *Temporal) SetDown(down bool) {
	t.mu.Lock()
	t.down = down
	t.mu.Unlock()
}

// Refuse makes the fake refuse the start of orderID's workflow the way
// Temporal refuses an invalid argument: with orchestrator.ErrRefused.
func (t *Temporal) Refuse(orderID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.refuse == nil {
		t.refuse = map[string]bool{}
	}
	t.refuse[orderID] = true
}

// StartOrder implements orchestrator.Starter.
func (t *Temporal) StartOrder(_ context.Context, in saga.Input) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls++
	if t.down {
		t.failed++
		return ErrDown
	}
	id := saga.WorkflowID(in.Order.OrderID)
	if t.refuse[in.Order.OrderID] {
		t.failed++
		return fmt.Errorf("%w: invalid argument: workflow %s", orchestrator.ErrRefused, id)
	}
	if t.ids[id] {
		return fmt.Errorf("%w: %s", orchestrator.ErrAlreadyStarted, id)
	}
	t.ids[id] = true
	t.started = append(t.started, in)
	return nil
}

// SignalDelivered implements orchestrator.Signaler.
func (t *Temporal) SignalDelivered(_ context.Context, orderID string, s saga.DeliveredSignal) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.down {
		return ErrDown
	}
	if !t.ids[saga.WorkflowID(orderID)] {
		return fmt.Errorf("%w: %s", orchestrator.ErrWorkflowNotFound, orderID)
	}
	t.signals = append(t.signals, Signal{OrderID: orderID, DeliveredSignal: s})
	return nil
}

// Started returns the inputs of the workflows started, in order.
func (t *Temporal) Started() []saga.Input {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]saga.Input(nil), t.started...)
}

// Signals returns the delivered signals received, in order.
func (t *Temporal) Signals() []Signal {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Signal(nil), t.signals...)
}

// Calls returns how many start calls were made, and how many failed because the fake was down.
func (t *Temporal) Calls() (calls, failed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.calls, t.failed
}
