package notification

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// memLedger is an in-memory Ledger with the same claim rules as Store.
type memLedger struct {
	mu        sync.Mutex
	contacts  map[string]Contact
	rows      map[deliveryKey]*memRow
	status    map[string]string
	firstDone map[string]bool
}

type memRow struct {
	outcome   string
	attempts  int
	owner     string
	claimedAt time.Time
	lastErr   string
}

func newMemLedger(cs ...Contact) *memLedger {
	l := &memLedger{contacts: map[string]Contact{}, rows: map[deliveryKey]*memRow{}, status: map[string]string{}, firstDone: map[string]bool{}}
	for _, c := range cs {
		l.contacts[c.UserID] = c
	}
	return l
}

func (l *memLedger) Open(_ context.Context, p Payload) (Contact, []Delivery, []Channel, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.contacts[p.UserID]
	if !ok {
		c = Contact{UserID: p.UserID}
	}
	var ds []Delivery
	var skipped []Channel
	for _, ch := range Channels {
		k := deliveryKey{p.OrderID, p.Template, ch}
		r, ok := l.rows[k]
		if !ok {
			r = &memRow{outcome: OutcomePending}
			if c.Address(ch) == "" {
				r.outcome = OutcomeSkipped
				skipped = append(skipped, ch)
			}
			l.rows[k] = r
		}
		ds = append(ds, Delivery{Channel: ch, Outcome: r.outcome, Attempts: r.attempts, LastError: r.lastErr})
	}
	l.status[TaskID(p.OrderID, p.Template)] = StatusSending
	return c, ds, skipped, nil
}

func (l *memLedger) Claim(_ context.Context, k deliveryKey, owner string, stale time.Duration) (bool, string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.rows[k]
	if r.outcome == OutcomePending || r.outcome == OutcomeFailed || (r.outcome == OutcomeSending && time.Since(r.claimedAt) > stale) {
		r.outcome, r.owner, r.claimedAt = OutcomeSending, owner, time.Now()
		r.attempts++
		return true, OutcomeSending, nil
	}
	return false, r.outcome, nil
}

func (l *memLedger) Settle(_ context.Context, k deliveryKey, owner, outcome, lastErr string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.rows[k]
	if r.owner != owner || r.outcome != OutcomeSending {
		return false, nil
	}
	r.outcome, r.lastErr = outcome, lastErr
	id := TaskID(k.OrderID, k.Template)
	if outcome == OutcomeDelivered && !l.firstDone[id] {
		l.firstDone[id] = true
		return true, nil
	}
	return false, nil
}

func (l *memLedger) Finish(_ context.Context, orderID, template, status string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.status[TaskID(orderID, template)] = status
	return nil
}

func (l *memLedger) row(orderID, template string, ch Channel) memRow {
	l.mu.Lock()
	defer l.mu.Unlock()
	return *l.rows[deliveryKey{orderID, template, ch}]
}

// memRecorder is the sandbox's record in memory.
type memRecorder struct {
	mu       sync.Mutex
	accepted []Message
	dups     int
}

func (r *memRecorder) Accept(_ context.Context, m Message, _ string, _, _ time.Time) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.accepted {
		if a.IdempotencyKey == m.IdempotencyKey {
			r.dups++
			return true, nil
		}
	}
	r.accepted = append(r.accepted, m)
	return false, nil
}

func (r *memRecorder) count(ch Channel) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, a := range r.accepted {
		if a.Channel == ch {
			n++
		}
	}
	return n
}

// scripted fails the sends of a channel listed in fail (one entry per attempt).
type scripted struct {
	mu    sync.Mutex
	fail  map[Channel][]bool
	calls map[Channel]int
	next  Sender
}

func (s *scripted) Send(ctx context.Context, m Message) error {
	s.mu.Lock()
	i := s.calls[m.Channel]
	s.calls[m.Channel]++
	fail := i < len(s.fail[m.Channel]) && s.fail[m.Channel][i]
	s.mu.Unlock()
	if fail {
		return fmt.Errorf("%s: %w", m.Channel, ErrRejected)
	}
	return s.next.Send(ctx, m)
}

func newWorker(l Ledger, fail map[Channel][]bool) (*Worker, *memRecorder, *scripted) {
	rec := &memRecorder{}
	sb := &Sandbox{Channel: Email, Config: SandboxConfig{ProcessID: "test"}, Rec: rec}
	sc := &scripted{fail: fail, calls: map[Channel]int{}, next: sb}
	senders := map[Channel]Sender{Email: sc, Push: sc, SMS: sc}
	return &Worker{Ledger: l, Senders: senders, Metrics: NewMetrics(nil), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), ProcessID: "p1"}, rec, sc
}

var full = Contact{UserID: "u-1", Email: "a@example.test", Phone: "+15550000001", PushToken: "tok-1"}

func payload(order string) Payload {
	return Payload{OrderID: order, UserID: "u-1", Template: TemplateOrderShipped, RequestedAt: time.Now()}
}

func TestRetryDelays(t *testing.T) {
	f := RetryDelay(nil)
	for _, tc := range []struct {
		name string
		n    int
		err  error
		want time.Duration
	}{
		{"ok/first retry waits 5s", 0, errors.New("x"), 5 * time.Second},
		{"ok/second retry waits 10s", 1, errors.New("x"), 10 * time.Second},
		{"ok/later retries keep 10s", 7, errors.New("x"), 10 * time.Second},
		{"ok/in flight comes back soon", 0, fmt.Errorf("n: %w", ErrInFlight), time.Second},
	} {
		if got := f(tc.n, tc.err, nil); got != tc.want {
			t.Errorf("%s: delay(%d) = %s, want %s", tc.name, tc.n, got, tc.want)
		}
	}
	short := RetryDelay([]time.Duration{10 * time.Millisecond, 20 * time.Millisecond})
	if got := short(1, errors.New("x"), nil); got != 20*time.Millisecond {
		t.Errorf("configured delay(1) = %s, want 20ms", got)
	}
	if IsFailure(fmt.Errorf("w: %w", ErrInFlight)) || !IsFailure(errors.New("rejected")) {
		t.Error("IsFailure: in flight must not use up an attempt, a rejection must")
	}
}

func TestContactSkipping(t *testing.T) {
	l := newMemLedger(Contact{UserID: "u-1", Email: "a@example.test"})
	w, rec, _ := newWorker(l, nil)
	if err := w.Handle(context.Background(), payload("o-1"), Attempt{Number: 1}); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	for ch, want := range map[Channel]string{Email: OutcomeDelivered, Push: OutcomeSkipped, SMS: OutcomeSkipped} {
		if got := l.row("o-1", TemplateOrderShipped, ch).outcome; got != want {
			t.Errorf("%s outcome = %s, want %s", ch, got, want)
		}
	}
	if got := rec.count(Push) + rec.count(SMS); got != 0 {
		t.Errorf("sent %d messages on channels without a contact", got)
	}
	if got := counterValue(w.Metrics.Sends.WithLabelValues("sms", TemplateOrderShipped, OutcomeSkipped)); got != 1 {
		t.Errorf("skipped sms counter = %v, want 1", got)
	}
	// A user without any contact: everything skipped, nothing failed.
	p := payload("o-2")
	p.UserID = "u-unknown"
	if err := w.Handle(context.Background(), p, Attempt{Number: 1}); err != nil {
		t.Fatalf("Handle without contact: %v", err)
	}
	if got := l.status[TaskID("o-2", TemplateOrderShipped)]; got != StatusSkipped {
		t.Errorf("status without contact = %s, want %s", got, StatusSkipped)
	}
}

func TestPartialSuccessResendsOnlyFailedChannels(t *testing.T) {
	l := newMemLedger(full)
	// sms fails twice, push once; email never.
	w, rec, sc := newWorker(l, map[Channel][]bool{SMS: {true, true}, Push: {true}})
	p := payload("o-1")
	for i, wantErr := range []bool{true, true, false} {
		err := w.Handle(context.Background(), p, Attempt{Number: i + 1, Final: i == 2})
		if (err != nil) != wantErr {
			t.Fatalf("attempt %d: err = %v, want error %v", i+1, err, wantErr)
		}
	}
	for ch, want := range map[Channel]int{Email: 1, Push: 2, SMS: 3} {
		if got := sc.calls[ch]; got != want {
			t.Errorf("%s sends = %d, want %d (only failed channels are re-sent)", ch, got, want)
		}
		if got := rec.count(ch); got != 1 {
			t.Errorf("%s accepted %d times, want 1", ch, got)
		}
		if got := l.row("o-1", TemplateOrderShipped, ch).attempts; got != want {
			t.Errorf("%s attempts = %d, want %d", ch, got, want)
		}
	}
	if got := l.status[TaskID("o-1", TemplateOrderShipped)]; got != StatusDelivered {
		t.Errorf("status = %s, want %s", got, StatusDelivered)
	}
	// Another run of the delivered notification (a duplicate) sends nothing.
	if err := w.Handle(context.Background(), p, Attempt{Number: 1}); err != nil {
		t.Fatalf("duplicate run: %v", err)
	}
	if got := sc.calls[Email] + sc.calls[Push] + sc.calls[SMS]; got != 6 {
		t.Errorf("a duplicate run sent again: %d sends in all, want 6", got)
	}
}

func TestFinalAttemptFailureIsDead(t *testing.T) {
	l := newMemLedger(full)
	fails := make([]bool, MaxAttempts)
	for i := range fails {
		fails[i] = true
	}
	w, _, _ := newWorker(l, map[Channel][]bool{SMS: fails})
	p := payload("o-1")
	for i := range MaxAttempts {
		if err := w.Handle(context.Background(), p, Attempt{Number: i + 1, Final: i == MaxAttempts-1}); err == nil {
			t.Fatalf("attempt %d succeeded, want sms failure", i+1)
		}
	}
	if got := l.status[TaskID("o-1", TemplateOrderShipped)]; got != StatusDead {
		t.Errorf("status = %s, want %s", got, StatusDead)
	}
	if got := l.row("o-1", TemplateOrderShipped, SMS); got.outcome != OutcomeFailed || got.lastErr == "" {
		t.Errorf("sms = %+v, want failed with its error", got)
	}
}

func TestClaimInFlightAndStaleResendIsDuplicate(t *testing.T) {
	l := newMemLedger(full)
	w, rec, _ := newWorker(l, nil)
	p := payload("o-1")
	// A previous attempt was accepted by the provider for email, then crashed before recording it.
	k := deliveryKey{p.OrderID, p.Template, Email}
	l.Open(context.Background(), p)
	l.Claim(context.Background(), k, "crashed", time.Minute)
	rec.Accept(context.Background(), render(p, Email, full.Email), "crashed", time.Now(), time.Now())

	err := w.Handle(context.Background(), p, Attempt{Number: 2})
	if !errors.Is(err, ErrInFlight) {
		t.Fatalf("err = %v, want ErrInFlight while the claim is fresh", err)
	}
	w.StaleClaim = time.Nanosecond
	if err := w.Handle(context.Background(), p, Attempt{Number: 3}); err != nil {
		t.Fatalf("after the claim went stale: %v", err)
	}
	if got := l.row(p.OrderID, p.Template, Email).outcome; got != OutcomeDelivered {
		t.Errorf("email outcome = %s, want delivered", got)
	}
	if rec.count(Email) != 1 || rec.dups != 1 {
		t.Errorf("sandbox accepted email %d times with %d duplicates, want 1 and 1", rec.count(Email), rec.dups)
	}
}

func TestRateLimitedSendDoesNotFail(t *testing.T) {
	l := newMemLedger(full)
	w, rec, _ := newWorker(l, nil)
	w.Limiter = waitLimiter(5 * time.Millisecond)
	if err := w.Handle(context.Background(), payload("o-1"), Attempt{Number: 1}); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if got := counterValue(w.Metrics.RateLimited); got != 3 {
		t.Errorf("rate limited = %v, want 3", got)
	}
	if rec.count(Email)+rec.count(Push)+rec.count(SMS) != 3 {
		t.Error("not every channel was sent after waiting")
	}
}

type waitLimiter time.Duration

func (d waitLimiter) Wait(ctx context.Context) (time.Duration, error) {
	time.Sleep(time.Duration(d))
	return time.Duration(d), nil
}

func TestSandboxFailureRate(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		want error
	}{{0, nil}, {1, ErrRejected}} {
		s := &Sandbox{Channel: SMS, Config: SandboxConfig{FailureRate: tc.rate}, Rec: &memRecorder{}}
		if err := s.Send(context.Background(), Message{IdempotencyKey: "k", Channel: SMS}); !errors.Is(err, tc.want) {
			t.Errorf("rate %v: err = %v, want %v", tc.rate, err, tc.want)
		}
	}
	if err := (SandboxConfig{FailureRate: 1.5}).Validate(); err == nil {
		t.Error("failure rate 1.5 accepted")
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
