package analytics

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/kafka"
)

func orderEnvelope(t testing.TB, orderID string, totalCents int64) event.Envelope {
	t.Helper()
	env, err := event.New(event.AnalyticsOrder{OrderID: orderID, UserID: "u-1", TotalCents: totalCents, Currency: "USD", ItemCount: 2, Country: "US"},
		"order-service", orderID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func outcomeEnvelope(t testing.TB, orderID, status string) event.Envelope {
	t.Helper()
	env, err := event.New(event.AnalyticsOutcome{OrderID: orderID, UserID: "u-1", Status: status, TotalCents: 1000, Currency: "USD"},
		"saga", orderID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func record(t testing.TB, topic string, env event.Envelope) *kgo.Record {
	t.Helper()
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: topic, Key: []byte(env.CorrelationID), Value: b, Headers: kafka.EventHeaders(env)}
}

func deliveries(t testing.TB, n int) []Delivery {
	var ds []Delivery
	for i := range n {
		env := orderEnvelope(t, fmt.Sprintf("o-%d", i), 60000)
		ds = append(ds, Delivery{Rule: "r", Record: record(t, "analytics", env), Env: env})
	}
	return ds
}

func TestWebhookRetriesThenDelivers(t *testing.T) {
	var calls atomic.Int32
	var mu sync.Mutex
	keys := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var env event.Envelope
		if err := json.NewDecoder(r.Body).Decode(&env); err != nil || r.Header.Get("Idempotency-Key") != env.ID || r.Header.Get("X-Stampede-Rule") != "r" {
			t.Errorf("bad request: err %v, key %q id %q", err, r.Header.Get("Idempotency-Key"), env.ID)
		}
		mu.Lock()
		keys[env.ID]++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	wh := &WebhookTarget{URL: srv.URL, Attempts: 4, Backoff: time.Millisecond, Parallelism: 1}
	if err := wh.Deliver(context.Background(), deliveries(t, 1)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if got := calls.Load(); got != 3 {
		t.Fatalf("calls = %d, want 3 (two 503s, then 204)", got)
	}
	if len(keys) != 1 {
		t.Fatalf("delivered ids = %v, want one", keys)
	}
}

func TestWebhookGivesUpAfterAttempts(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	wh := &WebhookTarget{URL: srv.URL, Attempts: 3, Backoff: time.Millisecond}
	err := wh.Deliver(context.Background(), deliveries(t, 1))
	re, ok := rejected(err)
	if !ok || len(re.Rejected) != 1 || re.Rejected[0].Cause != CauseExhausted || !strings.Contains(re.Rejected[0].Reason, "3 attempts") {
		t.Fatalf("Deliver error = %v, want the event given up (exhausted) after 3 attempts, to be dead-lettered", err)
	}
	if got := calls.Load(); got != 3 {
		t.Fatalf("calls = %d, want 3 (bounded)", got)
	}
}

// A webhook that never answers holds a batch for its batch timeout, no
// longer: what it did not acknowledge is given up (timeout).
func TestWebhookHangingIsGivenUpAtTheBatchTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // then the server notices the client hang up
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	wh := &WebhookTarget{URL: srv.URL, Attempts: 5, Timeout: time.Minute, BatchTimeout: 300 * time.Millisecond, Backoff: time.Millisecond, Parallelism: 2}
	start := time.Now()
	err := wh.Deliver(context.Background(), deliveries(t, 5))
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Deliver took %s, want about the 300 ms batch timeout", took)
	}
	re, ok := rejected(err)
	if !ok || len(re.Rejected) != 5 {
		t.Fatalf("Deliver error = %v, want all 5 events given up", err)
	}
	for _, r := range re.Rejected {
		if r.Cause != CauseTimeout {
			t.Errorf("cause %q (%s), want %s", r.Cause, r.Reason, CauseTimeout)
		}
	}
	// The router stopping is not a reason to give up on anything.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if err := wh.Deliver(ctx, deliveries(t, 2)); err == nil {
		t.Fatal("Deliver with its context cancelled succeeded")
	} else if _, isRej := rejected(err); isRej {
		t.Fatalf("a cancelled Deliver gave events up: %v", err)
	}
}

func TestWebhookRejects4xx(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusUnprocessableEntity)
	}))
	defer srv.Close()
	wh := &WebhookTarget{URL: srv.URL, Attempts: 5, Backoff: time.Millisecond}
	err := wh.Deliver(context.Background(), deliveries(t, 2))
	re, ok := rejected(err)
	if !ok || len(re.Rejected) != 2 {
		t.Fatalf("Deliver error = %v, want 2 rejections", err)
	}
	if got := calls.Load(); got != 2 {
		t.Fatalf("calls = %d, want 2 (a 422 is not retried)", got)
	}
}

func TestFileTargetAppendsOneLinePerEvent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "out.jsonl")
	ft, err := OpenFileTarget(path)
	if err != nil {
		t.Fatal(err)
	}
	ds := deliveries(t, 3)
	if err := ft.Deliver(context.Background(), ds[:2]); err != nil {
		t.Fatal(err)
	}
	if err := ft.Deliver(context.Background(), ds[2:]); err != nil {
		t.Fatal(err)
	}
	if err := ft.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopening appends instead of truncating.
	ft, err = OpenFileTarget(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := ft.Deliver(context.Background(), ds[:1]); err != nil {
		t.Fatal(err)
	}
	ft.Close()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		env, err := event.Decode(sc.Bytes())
		if err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		ids = append(ids, env.ID)
	}
	want := []string{ds[0].Env.ID, ds[1].Env.ID, ds[2].Env.ID, ds[0].Env.ID}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("lines = %v, want %v", ids, want)
	}
}

// ebStub speaks EventBridge's PutEvents over JSON 1.1. The first call fails
// failFirst entries, as the real service does under throttling.
type ebStub struct {
	mu        sync.Mutex
	failFirst int
	calls     int
	accepted  []map[string]any
}

func (s *ebStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Amz-Target") != "AWSEvents.PutEvents" || r.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"__type":"UnknownOperationException","message":"target %q type %q"}`, r.Header.Get("X-Amz-Target"), r.Header.Get("Content-Type"))
		return
	}
	if r.Header.Get("Authorization") == "" {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"__type":"MissingAuthenticationTokenException","message":"unsigned"}`)
		return
	}
	var in struct {
		Entries []map[string]any
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	type result struct {
		EventId      string `json:",omitempty"`
		ErrorCode    string `json:",omitempty"`
		ErrorMessage string `json:",omitempty"`
	}
	out := struct {
		FailedEntryCount int
		Entries          []result
	}{}
	for i, e := range in.Entries {
		if s.calls == 1 && i < s.failFirst {
			out.FailedEntryCount++
			out.Entries = append(out.Entries, result{ErrorCode: "ThrottlingException", ErrorMessage: "Rate exceeded"})
			continue
		}
		s.accepted = append(s.accepted, e)
		out.Entries = append(out.Entries, result{EventId: fmt.Sprintf("eb-%d", len(s.accepted))})
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(out)
}

func TestEventBridgeTargetAgainstStub(t *testing.T) {
	stub := &ebStub{failFirst: 2}
	srv := httptest.NewServer(stub)
	defer srv.Close()
	cfg := aws.Config{
		Region: "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDSTUB", SecretAccessKey: "stub"}, nil
		}),
	}
	tgt := &EventBridgeTarget{API: NewEventBridgeClient(cfg, "", srv.URL), Bus: "stampede-bus"}
	ds := deliveries(t, 12) // two PutEvents calls: 10 + 2
	if err := tgt.Deliver(context.Background(), ds); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if got := len(stub.accepted); got != 12 {
		t.Fatalf("accepted %d entries, want 12 (2 failed ones retried)", got)
	}
	if stub.calls != 3 {
		t.Fatalf("PutEvents calls = %d, want 3 (10 with 2 failed, the 2 again, the last 2)", stub.calls)
	}
	seen := map[string]bool{}
	for _, e := range stub.accepted {
		if e["EventBusName"] != "stampede-bus" || e["Source"] != "stampede.order-service" || e["DetailType"] != event.TypeAnalyticsOrder {
			t.Fatalf("entry = %v", e)
		}
		env, err := event.Decode([]byte(e["Detail"].(string)))
		if err != nil {
			t.Fatalf("Detail is not the envelope: %v", err)
		}
		seen[env.ID] = true
	}
	if len(seen) != 12 {
		t.Fatalf("distinct events = %d, want 12", len(seen))
	}
}

func TestEventBridgeTargetFailsWhenEntriesKeepFailing(t *testing.T) {
	stub := &ebStub{failFirst: 1}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stub.mu.Lock()
		stub.calls = 0 // every call is a "first" call: the entry always fails
		stub.mu.Unlock()
		stub.ServeHTTP(w, r)
	}))
	defer srv.Close()
	cfg := aws.Config{Region: "us-east-1", Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKIDSTUB", SecretAccessKey: "stub"}, nil
	})}
	tgt := &EventBridgeTarget{API: NewEventBridgeClient(cfg, "", srv.URL), Attempts: 2}
	if err := tgt.Deliver(context.Background(), deliveries(t, 1)); err == nil {
		t.Fatal("Deliver succeeded although PutEvents failed the entry every time")
	}
}
