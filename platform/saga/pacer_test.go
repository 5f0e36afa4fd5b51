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

func TestPacerTurnsAwayWhatWouldMissItsDeadline(t *testing.T) {
	// 1/s, burst 1: the second retry's turn is ~1 s away; with an attempt
	// deadline 1.5 s ahead and a 1 s reserve for the call, it is turned away
	// at once with a retryable, recognisable error, and it takes no token.
	p := NewPacer(1, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := p.Admit(ctx, 2, time.Time{}); err != nil {
		t.Fatal(err)
	}
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
	// The turn is ~1 s away but the step's budget ends in 1.2 s: waiting
	// would leave less than the call's reserve, so the retry goes now.
	p := NewPacer(1, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := p.Admit(ctx, 2, time.Time{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p.Admit(ctx, 2, time.Now().Add(1200*time.Millisecond)); err != nil {
		t.Fatalf("near the budget's end: %v", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("a retry near its budget's end waited %s", d)
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
