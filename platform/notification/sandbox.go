package notification

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// ErrRejected is the sandbox provider refusing a message (its simulated failure).
var ErrRejected = errors.New("notification: sandbox provider rejected the message")

// SandboxConfig configures the built-in providers.
type SandboxConfig struct {
	Latency     time.Duration // time each send takes
	FailureRate float64       // probability in [0, 1] that an attempt is rejected
	ProcessID   string        // recorded with each accepted message
}

// Validate names the bad field.
func (c SandboxConfig) Validate() error {
	if c.FailureRate < 0 || c.FailureRate > 1 {
		return fmt.Errorf("sandbox-failure-rate: %v is not between 0 and 1", c.FailureRate)
	}
	if c.Latency < 0 {
		return fmt.Errorf("sandbox-latency: %v is negative", c.Latency)
	}
	return nil
}

// Recorder keeps the sandbox's record of accepted messages.
type Recorder interface {
	// Accept records m; duplicate reports that its idempotency key had
	// already been accepted, in which case it is not delivered again.
	Accept(ctx context.Context, m Message, processID string, receivedAt, acceptedAt time.Time) (duplicate bool, err error)
}

// Sandbox is a built-in provider for one channel: it takes Latency per
// message, rejects FailureRate of attempts at random, and records every
// message it accepts. Like the idempotent APIs of real providers, it accepts
// a resend of a key it already accepted without delivering it twice.
type Sandbox struct {
	Channel Channel
	Config  SandboxConfig
	Rec     Recorder
}

var _ Sender = (*Sandbox)(nil)

// Sandboxes returns one sandbox provider per channel.
func Sandboxes(cfg SandboxConfig, rec Recorder) map[Channel]Sender {
	out := map[Channel]Sender{}
	for _, ch := range Channels {
		out[ch] = &Sandbox{Channel: ch, Config: cfg, Rec: rec}
	}
	return out
}

// Send implements Sender.
func (s *Sandbox) Send(ctx context.Context, m Message) error {
	received := time.Now()
	if s.Config.Latency > 0 {
		t := time.NewTimer(s.Config.Latency)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	if s.Config.FailureRate > 0 && rand.Float64() < s.Config.FailureRate {
		return fmt.Errorf("%s to %s: %w", s.Channel, m.To, ErrRejected)
	}
	if _, err := s.Rec.Accept(ctx, m, s.Config.ProcessID, received, time.Now()); err != nil {
		return fmt.Errorf("%s sandbox: record: %w", s.Channel, err)
	}
	return nil
}
