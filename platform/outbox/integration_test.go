//go:build integration

package outbox_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/outbox"
	"github.com/stampede-dev/stampede/platform/stacktest"
)

// placeOrder posts an order and returns its id.
func placeOrder(t *testing.T) string {
	t.Helper()
	body := `{"userId":"u-crash","currency":"EUR","items":[{"sku":"SKU-00009","qty":1,"priceCents":700}],
	 "shippingAddress":{"name":"Grace","line1":"2 Side St","city":"Arlington","postalCode":"22201","country":"US"},
	 "payment":{"method":"card","token":"tok_visa"}}`
	resp, err := http.Post(stacktest.URL(config.Orders)+"/v1/orders", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST = %d %s", resp.StatusCode, b)
	}
	var r struct{ OrderID string }
	if err := json.Unmarshal(b, &r); err != nil || r.OrderID == "" {
		t.Fatalf("POST answered %s", b)
	}
	return r.OrderID
}

// createdEvents returns the order.created records of orderID among recs.
func createdEvents(recs []*kgo.Record, orderID string) []event.Envelope {
	var out []event.Envelope
	for _, r := range recs {
		env, err := event.Decode(r.Value)
		if err != nil || env.Type != event.TypeOrderCreated {
			continue
		}
		if oc, err := event.DecodeData[event.OrderCreated](env); err == nil && oc.OrderID == orderID {
			out = append(out, env)
		}
	}
	return out
}

// TestRelayCrash kills the relay at each of its failpoints, between the
// database commit and the end of the publish, restarts it, and checks the
// event is on the topic (at least once, always with the same event id).
func TestRelayCrash(t *testing.T) {
	tests := []struct {
		failpoint  string
		wantBefore int // copies visible while the relay is dead
		wantAfter  int // copies visible after the restart
	}{
		{outbox.FailBeforePublish, 0, 1},
		{outbox.FailBeforeCommit, 0, 1}, // the open Kafka transaction is aborted on restart
		{outbox.FailBeforeMark, 1, 2},   // committed but not marked: published again, same id
	}
	bin := stacktest.Bin(t)
	t.Cleanup(func() { stacktest.Stampede(t, "up", config.Relay) })
	for _, tt := range tests {
		t.Run(tt.failpoint, func(t *testing.T) {
			stacktest.Stampede(t, "down", config.Relay)

			logPath := filepath.Join(t.TempDir(), "relay.log")
			logf, _ := os.Create(logPath)
			defer logf.Close()
			crashing := exec.Command(bin, "serve", "relay")
			crashing.Env = append(os.Environ(), "STAMPEDE_FAILPOINTS="+tt.failpoint)
			crashing.Stdout, crashing.Stderr = logf, logf
			if err := crashing.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- crashing.Wait() }()
			stacktest.WaitHTTP(t, "http://"+config.Addr(config.Relay)+"/healthz", 20*time.Second)

			cl := stacktest.Consumer(t, event.TopicOrders)
			id := placeOrder(t)

			select {
			case err := <-exited:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					b, _ := os.ReadFile(logPath)
					t.Fatalf("relay ended with %v, want SIGKILL at %s\n%s", err, tt.failpoint, b)
				}
			case <-time.After(20 * time.Second):
				crashing.Process.Kill()
				t.Fatalf("relay did not reach failpoint %s", tt.failpoint)
			}

			before := createdEvents(stacktest.Collect(cl, 3*time.Second, func([]*kgo.Record) bool { return false }), id)
			if len(before) != tt.wantBefore {
				t.Fatalf("while the relay is dead: %d copies of order.created visible, want %d", len(before), tt.wantBefore)
			}

			stacktest.Stampede(t, "up", config.Relay)
			var seen time.Time
			after := createdEvents(stacktest.Collect(cl, 30*time.Second, func(recs []*kgo.Record) bool {
				if seen.IsZero() && len(before)+len(createdEvents(recs, id)) >= tt.wantAfter {
					seen = time.Now()
				}
				return !seen.IsZero() && time.Since(seen) > 2*time.Second
			}), id)
			all := append(before, after...)
			if len(all) != tt.wantAfter {
				t.Fatalf("after the restart: %d copies of order.created, want %d", len(all), tt.wantAfter)
			}
			for _, env := range all[1:] {
				if env.ID != all[0].ID {
					t.Fatalf("republished event has id %s, first had %s: consumers could not dedupe", env.ID, all[0].ID)
				}
			}
		})
	}
}
