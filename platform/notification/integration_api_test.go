//go:build integration

package notification_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stampede-dev/stampede/platform/notification"
)

// flaky fails every send while failing is set.
type flaky struct {
	failing atomic.Bool
	next    notification.Sender
}

func (f *flaky) Send(ctx context.Context, m notification.Message) error {
	if f.failing.Load() {
		return fmt.Errorf("%s: %w", m.Channel, notification.ErrRejected)
	}
	return f.next.Send(ctx, m)
}

// TestDeadRequeueAndAPI: a notification whose SMS fails three times is dead
// (archived, listed with its order and error); requeued once the provider
// recovers, it sends only SMS; the API shows it with per-channel attempts.
func TestDeadRequeueAndAPI(t *testing.T) {
	e := newEnv(t, 7)
	e.contacts(t, "api-", 1, notification.Email, notification.Push, notification.SMS)
	sms := &flaky{}
	sms.failing.Store(true)
	e.startWorker(t, notification.SandboxConfig{ProcessID: "api"}, 1000, notification.ServerConfig{
		TaskCheckInterval: 10 * time.Millisecond, DelayedTaskCheckInterval: 100 * time.Millisecond,
		RetryDelays: []time.Duration{0, 0},
	}, func(w *notification.Worker) {
		sms.next = w.Senders[notification.SMS]
		w.Senders[notification.SMS] = sms
	})

	p := notification.Payload{OrderID: "api-order", UserID: "api-1", Template: notification.TemplateOrderFailed, RequestedAt: time.Now(), Data: map[string]string{"reason": "payment declined"}}
	if err := notification.Enqueue(context.Background(), e.client, p); err != nil {
		t.Fatal(err)
	}
	e.waitDone(t, 1, 30*time.Second)
	dead, err := notification.DeadTasks(e.insp)
	if err != nil {
		t.Fatal(err)
	}
	id := notification.TaskID(p.OrderID, p.Template)
	if len(dead) != 1 || dead[0].ID != id || dead[0].OrderID != p.OrderID || !strings.Contains(dead[0].LastError, "sms") {
		t.Fatalf("dead = %+v, want %s with its sms error", dead, id)
	}
	if err := notification.Requeue(e.insp, "no-such:order-failed"); !errors.Is(err, notification.ErrUnknownTask) {
		t.Errorf("requeue of an unknown id: err = %v, want ErrUnknownTask", err)
	}
	sms.failing.Store(false)
	if err := notification.Requeue(e.insp, id); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for e.count(t, `SELECT count(*) FROM deliveries WHERE order_id = $1 AND status = 'delivered'`, p.OrderID) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("requeued notification not delivered on every channel")
		}
		time.Sleep(50 * time.Millisecond)
	}

	svc := &notification.Service{Store: e.store, Inspector: e.insp, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	srv := httptest.NewServer(svc.Router())
	defer srv.Close()
	var got struct {
		Notifications []notification.Notification `json:"notifications"`
	}
	getJSON(t, srv.URL+"/v1/notifications?orderId="+p.OrderID, http.StatusOK, &got)
	if len(got.Notifications) != 1 {
		t.Fatalf("notifications = %+v, want 1", got.Notifications)
	}
	n := got.Notifications[0]
	attempts := map[notification.Channel]int{}
	for _, d := range n.Channels {
		if d.Outcome != notification.OutcomeDelivered {
			t.Errorf("%s outcome = %s, want delivered", d.Channel, d.Outcome)
		}
		attempts[d.Channel] = d.Attempts
	}
	if want := notification.MaxAttempts + 1; attempts[notification.Email] != 1 || attempts[notification.Push] != 1 || attempts[notification.SMS] != want {
		t.Errorf("attempts = %v, want email 1, push 1, sms %d (%d failed + the requeue)", attempts, want, notification.MaxAttempts)
	}
	if n.Status != notification.StatusDelivered || n.TaskState != "completed" {
		t.Errorf("status %s, task state %s, want delivered and completed", n.Status, n.TaskState)
	}
	for _, ch := range notification.Channels {
		if got := e.count(t, `SELECT count(*) FROM sandbox_messages WHERE order_id = $1 AND channel = $2`, p.OrderID, string(ch)); got != 1 {
			t.Errorf("%s accepted %d times, want 1", ch, got)
		}
	}

	// Contacts: set, read back, and a bad one names its field.
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/v1/contacts/api-2", strings.NewReader(`{"email":"b@example.test"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT contact: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	var c notification.Contact
	getJSON(t, srv.URL+"/v1/contacts/api-2", http.StatusOK, &c)
	if c.Email != "b@example.test" || c.Phone != "" {
		t.Errorf("contact = %+v", c)
	}
	var bad map[string]string
	getJSON(t, srv.URL+"/v1/notifications", http.StatusBadRequest, &bad)
	if bad["field"] != "orderId" {
		t.Errorf("missing orderId: %v, want field orderId", bad)
	}
}

func getJSON(t *testing.T, url string, status int, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != status {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s, want %d", url, resp.StatusCode, b, status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
