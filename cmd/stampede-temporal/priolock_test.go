package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.temporal.io/server/common/headers"
)

// callCtx is a context of a call named origin, as the server's interceptors
// leave it for the store.
func callCtx(origin string) context.Context {
	return headers.SetCallerInfo(context.Background(), headers.NewCallerInfo("default", headers.CallerTypeAPI, origin))
}

func TestClassOf(t *testing.T) {
	for origin, want := range map[string]int{
		"StartWorkflowExecution":       intake,
		"SignalWorkflowExecution":      intake,
		"RespondWorkflowTaskCompleted": rest,
		"":                             rest,
	} {
		if got, o := classOf(callCtx(origin)); got != want || o != origin {
			t.Errorf("classOf(%q) = %d, %q; want %d", origin, got, o, want)
		}
	}
	if got, _ := classOf(context.Background()); got != rest {
		t.Errorf("a context without caller info is class %d, want rest", got)
	}
}

// queueUp holds l and lines up waiters for it in the order given, each
// recording its name when it gets the lock; then it lets go and returns the
// order they were served in.
func queueUp(t *testing.T, l *writeLock, origins []string) []string {
	t.Helper()
	if err := l.lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		served []string
		wg     sync.WaitGroup
	)
	for i, o := range origins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.lock(callCtx(o)); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			served = append(served, o)
			mu.Unlock()
			l.unlock()
		}()
		// Wait until it queues, so arrival order is the slice's.
		for waiting(l) < i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	l.unlock()
	wg.Wait()
	return served
}

func waiting(l *writeLock) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.waiting[intake]) + len(l.waiting[rest])
}

func TestIntakeWritesGoFirst(t *testing.T) {
	arrivals := []string{"RespondWorkflowTaskCompleted", "RespondActivityTaskCompleted", "StartWorkflowExecution",
		"RespondWorkflowTaskCompleted", "SignalWorkflowExecution"}
	got := queueUp(t, &writeLock{}, arrivals)
	want := []string{"StartWorkflowExecution", "SignalWorkflowExecution",
		"RespondWorkflowTaskCompleted", "RespondActivityTaskCompleted", "RespondWorkflowTaskCompleted"}
	if !equal(got, want) {
		t.Errorf("served %q, want %q", got, want)
	}

	// Off, the lock serves in arrival order: the test can tell the two.
	writePriority = false
	defer func() { writePriority = true }()
	if got := queueUp(t, &writeLock{}, arrivals); !equal(got, arrivals) {
		t.Errorf("without priority served %q, want arrival order %q", got, arrivals)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A waiter whose context ends leaves the queue; one that was handed the lock
// as its context ended passes it on, so the lock is never lost.
func TestWriteLockWaiterGivesUp(t *testing.T) {
	l := &writeLock{}
	if err := l.lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(callCtx("StartWorkflowExecution"), 20*time.Millisecond)
	defer cancel()
	if err := l.lock(ctx); err == nil {
		t.Fatal("got a held lock")
	}
	if n := waiting(l); n != 0 {
		t.Fatalf("%d waiters left after the only one gave up", n)
	}
	l.unlock()

	// Many waiters with short deadlines against a holder that keeps
	// taking it back: every lock still ends free.
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(callCtx([]string{"StartWorkflowExecution", "x"}[i%2]), time.Duration(i%5)*100*time.Microsecond)
			defer cancel()
			if l.lock(ctx) == nil {
				time.Sleep(50 * time.Microsecond)
				l.unlock()
			}
		}()
	}
	wg.Wait()
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	if err := l.lock(ctx2); err != nil {
		t.Fatalf("the lock was lost: %v", err)
	}
	l.unlock()
	if l.held || waiting(l) != 0 {
		t.Errorf("held %v with %d waiters, want free", l.held, waiting(l))
	}
}
