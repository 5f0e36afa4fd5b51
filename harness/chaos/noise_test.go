package chaos

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestBurnStopsByItselfAndOnCancel(t *testing.T) {
	start := time.Now()
	Burn(context.Background(), 1.5, 100*time.Millisecond)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Burn with a 100 ms limit ran %s", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	start = time.Now()
	Burn(ctx, 0.5, time.Hour)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Burn ran %s after its context ended", d)
	}
}

func TestNoiseNoneWhenZero(t *testing.T) {
	n, err := StartNoise(context.Background(), "/nonexistent", 0, time.Second)
	if n != nil || err != nil {
		t.Fatalf("StartNoise(0) = %v, %v; want nothing", n, err)
	}
	if r := n.Stop(); r != nil {
		t.Fatalf("Stop of no noise = %+v", r)
	}
}

func TestNoiseReportsWhatTheHogTook(t *testing.T) {
	// A stand-in for `stampede noise`: a shell busy loop (arguments ignored).
	bin := filepath.Join(t.TempDir(), "hog")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nwhile :; do :; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	n, err := StartNoise(context.Background(), bin, 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	r := n.Stop()
	if r == nil || r.Cores != 1 || r.Wall < 300*time.Millisecond {
		t.Fatalf("report = %+v", r)
	}
	if r.CPU <= 0 || r.CoresUsed <= 0 {
		t.Errorf("the hog's CPU was not measured: %+v", r)
	}
	if _, err := StartNoise(context.Background(), filepath.Join(t.TempDir(), "missing"), 1, time.Second); err == nil {
		t.Error("a missing binary started")
	}
}
