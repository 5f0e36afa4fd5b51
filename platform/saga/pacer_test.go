package saga

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPacerFirstAttemptsNeverWait(t *testing.T) {
	p := NewPacer(1, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	for i := 0; i < 100; i++ {
		if err := p.Admit(ctx, 1, time.Time{}); err != nil {
			t.Fatalf("first attempt %d: %v", i, err)
		}
	}
}

func TestPacerNilAndZeroRateAdmitEverything(t *testing.T) {
	if NewPacer(0, 5) != nil {
		t.Fatal("rate 0 should mean no pacer")
	}
	var p *Pacer
	for i := 0; i < 10; i++ {
		if err := p.Admit(context.Background(), 5, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPacerSpreadsRetries(t *testing.T) {
	// 20/s with a burst of 2: the first two retries go at once, the next
	// waits about 50 ms.
	p := NewPacer(20, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	for i := 0; i < 2; i++ {
		if err := p.Admit(ctx, 2, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 30*time.Millisecond {
		t.Errorf("burst waited %s", d)
	}
	if err := p.Admit(ctx, 2, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("third retry went after %s; want it paced (~50 ms)", d)
	}
}

// busyPacer returns a 1/s Pacer, burst 1, whose token a retry has just
// taken: the next retry's turn is ~1 s away.
func busyPacer(t *testing.T, ctx context.Context) *Pacer {
	t.Helper()
	p := NewPacer(1, 1)
	if err := p.Admit(ctx, 2, time.Time{}); err != nil {
		t.Fatal(err)
	}
	return p
}

// goesAtOnce fails the test unless attempt is admitted without waiting.
func goesAtOnce(t *testing.T, p *Pacer, ctx context.Context, attempt int, budgetEnd time.Time, what string) {
	t.Helper()
	start := time.Now()
	if err := p.Admit(ctx, attempt, budgetEnd); err != nil {
		t.Fatalf("%s: %v, want to go now", what, err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("%s: waited %s, want to go at once", what, d)
	}
}

func TestPacerTurnsAwayWhatWouldMissItsDeadline(t *testing.T) {
	// The second retry's turn is ~1 s away; with an attempt deadline 1.5 s
	// ahead and a 1 s reserve for the call, it is turned away at once with
	// a retryable, recognisable error, and it takes no token.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	p := busyPacer(t, ctx)
	start := time.Now()
	err := p.Admit(ctx, 3, time.Time{})
	if !IsPaced(err) {
		t.Fatalf("err = %v, want a paced error", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("turned away after %s; want at once", d)
	}
	if IsPaced(errors.New("other")) {
		t.Error("IsPaced(other error)")
	}
}

func TestPacerNeverSpendsTheOutageBudget(t *testing.T) {
	// The turn is ~1 s away: with the step's budget ending in 1.2 s, or in
	// 3.5 s (waiting would leave less than a whole attempt for the call; a
	// service draining a backlog answers slowly), the retry goes now.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	p := busyPacer(t, ctx)
	goesAtOnce(t, p, ctx, 2, time.Now().Add(1200*time.Millisecond), "1.2 s before the budget's end")
	goesAtOnce(t, p, ctx, 2, time.Now().Add(3500*time.Millisecond), "3.5 s before the budget's end")
}

func TestPacerGoesWhenItsNextTryWouldComeTooLate(t *testing.T) {
	// Turned away, attempt 3 would come back after the policy's 4 s
	// backoff: with the budget ending in 4.5 s that leaves no time for a
	// call, so it goes now; with 10 s left it is turned away as before.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	p := busyPacer(t, ctx)
	goesAtOnce(t, p, ctx, 3, time.Now().Add(4500*time.Millisecond), "next try past the budget")
	if err := p.Admit(ctx, 3, time.Now().Add(10*time.Second)); !IsPaced(err) {
		t.Fatalf("next try well inside the budget: %v, want a paced error", err)
	}
}

func TestRetryBackoffIsThePolicys(t *testing.T) {
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 16 * time.Second, 6: retryMax, 40: retryMax} {
		if got := retryBackoff(attempt); got != want {
			t.Errorf("retryBackoff(%d) = %s, want %s", attempt, got, want)
		}
	}
}

func TestPacerWaitEndsWithContext(t *testing.T) {
	p := NewPacer(0.5, 1) // next turn 2 s away
	if err := p.Admit(context.Background(), 2, time.Time{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if err := p.Admit(ctx, 2, time.Time{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// With a saga budget, retries get what new sagas leave of it, never less
// than the floor, and the limiter follows at the next retry; first attempts
// of later steps are not new sagas and leave the budget alone.
func TestPacerSagaBudgetFollowsTheLoad(t *testing.T) {
	p := NewPacer(1, 1).WithSagaBudget(10)
	ctx := context.Background()
	if got := p.Rate(); got != 10 {
		t.Fatalf("idle: rate %g, want the whole budget 10", got)
	}
	for i := 0; i < 8; i++ { // 4 new sagas a second over the window
		p.Arrived()
	}
	for i := 0; i < 50; i++ { // their later steps' first attempts
		if err := p.Admit(ctx, 1, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.Rate(); got != 6 {
		t.Fatalf("at 4 new sagas/s: rate %g, want 10-4 = 6", got)
	}
	if err := p.Admit(ctx, 2, time.Time{}); err != nil { // burst 1: the first retry goes at once
		t.Fatal(err)
	}
	if got := float64(p.lim.Limit()); got != 6 {
		t.Errorf("limiter at %g after a retry, want 6", got)
	}
	for i := 0; i < 20; i++ { // a peak: 14 a second
		p.Arrived()
	}
	if got := p.Rate(); got != 1 {
		t.Fatalf("at a peak: rate %g, want the floor 1", got)
	}
	// Once the window has passed with no new saga, the whole budget again.
	p.mu.Lock()
	got := p.rateLocked(time.Now().Add(arrivalWindow + time.Second))
	n := len(p.arrivals)
	p.mu.Unlock()
	if got != 10 || n != 0 {
		t.Errorf("after the window: rate %g with %d arrivals kept, want 10 and 0", got, n)
	}
}

func TestPacerWithoutSagaBudgetKeepsItsRate(t *testing.T) {
	p := NewPacer(4, 1).WithSagaBudget(0)
	for i := 0; i < 100; i++ {
		p.Arrived()
	}
	if got := p.Rate(); got != 4 {
		t.Errorf("rate %g, want the fixed 4", got)
	}
	if len(p.arrivals) != 0 {
		t.Errorf("%d arrivals kept without a budget, want none", len(p.arrivals))
	}
	var nilPacer *Pacer
	if nilPacer.WithSagaBudget(10) != nil {
		t.Error("WithSagaBudget on a nil Pacer should stay nil (no pacing)")
	}
	nilPacer.Arrived() // no pacing: nothing to count, no panic
}
