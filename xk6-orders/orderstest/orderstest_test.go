package orderstest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const body = `{"userId":"u-1","currency":"USD","items":[{"sku":"SKU-00001","qty":2,"priceCents":1999}],` +
	`"shippingAddress":{"name":"Ada","line1":"1 Main St","city":"Springfield","postalCode":"12345","country":"US"},` +
	`"payment":{"method":"card","token":"tok_visa"}}`

func post(t *testing.T, h http.Handler, key, b string) (int, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/v1/orders", strings.NewReader(b))
	r.Header.Set("Idempotency-Key", key)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return w.Code, out
}

func TestIdempotency(t *testing.T) {
	s := New(time.Millisecond)
	h := s.Handler()
	code, first := post(t, h, "k1", body)
	if code != http.StatusAccepted || first["orderId"] == "" || first["totalCents"] != float64(3998) {
		t.Fatalf("got %d %v, want 202 with an order of 3998", code, first)
	}
	code, again := post(t, h, "k1", body)
	if code != http.StatusAccepted || again["orderId"] != first["orderId"] {
		t.Errorf("replay: got %d %v, want 202 with the same order", code, again)
	}
	if code, _ := post(t, h, "k1", strings.Replace(body, `"qty":2`, `"qty":3`, 1)); code != http.StatusUnprocessableEntity {
		t.Errorf("same key, other body: got %d, want 422", code)
	}
	if code, e := post(t, h, "k2", strings.Replace(body, `"qty":2`, `"qty":0`, 1)); code != http.StatusBadRequest || e["field"] != "items[0].qty" {
		t.Errorf("bad qty: got %d %v, want 400 naming items[0].qty", code, e)
	}
	if s.Len() != 1 {
		t.Errorf("got %d orders, want 1", s.Len())
	}
}

func TestConcurrentDuplicateIsConflict(t *testing.T) {
	s := New(time.Millisecond)
	s.AcceptDelay = 100 * time.Millisecond
	h := s.Handler()
	codes := make([]int, 2)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 1 {
				time.Sleep(20 * time.Millisecond)
			}
			codes[i], _ = post(t, h, "same", body)
		}()
	}
	wg.Wait()
	if codes[0] != http.StatusAccepted || codes[1] != http.StatusConflict {
		t.Errorf("got %v, want [202 409]", codes)
	}
}

func TestStatusFollowsThePath(t *testing.T) {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	s := New(time.Second)
	s.Now = func() time.Time { return now }
	h := s.Handler()
	tests := []struct {
		name, body string
		after      time.Duration
		want       string
	}{
		{"ok/complete waits in transit", body, time.Hour, "in_transit"},
		{"ok/complete mid-way", body, 4 * time.Second, "creating_shipment"},
		{"ok/declined", strings.Replace(body, "tok_visa", "tok_declined", 1), time.Hour, "failed"},
		{"ok/out of stock", strings.Replace(body, "SKU-00001", "SKU-OOS", 1), time.Hour, "failed"},
		{"ok/undeliverable", strings.Replace(body, `"US"`, `"XX"`, 1), time.Hour, "failed"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
			_, placed := post(t, h, tt.name+string(rune('a'+i)), tt.body)
			now = now.Add(tt.after)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/orders/"+placed["orderId"].(string), nil))
			var o struct {
				Status  string
				History []struct{ Status string }
			}
			if err := json.Unmarshal(w.Body.Bytes(), &o); err != nil {
				t.Fatal(err)
			}
			if o.Status != tt.want || o.History[0].Status != "pending" || o.History[len(o.History)-1].Status != tt.want {
				t.Errorf("got %+v, want status %s with a history from pending", o, tt.want)
			}
		})
	}
}
