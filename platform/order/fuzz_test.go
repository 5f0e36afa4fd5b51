package order

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stampede-dev/stampede/platform/web"
)

// FuzzCreateOrder sends POST /v1/orders with any body, Idempotency-Key and
// X-Correlation-ID through the middleware, as a client would. The property:
// no panic, never a 5xx, and every refusal is a JSON error naming a field.
// Seeds: testdata/fuzz/FuzzCreateOrder (the hostile cases of issue 14).
func FuzzCreateOrder(f *testing.F) {
	f.Add([]byte(goodBody), "", "")
	f.Add([]byte(goodBody), "key-1", "run-1:order-7")
	f.Add([]byte(`{"userId":"u","userId":"v"}`), "k\xff", strings.Repeat("c", 129))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, body []byte, key, cid string) {
		store := &fakeOrders{keys: map[string]CreateResponse{}}
		h := web.Middleware((&Service{Store: store, Log: log}).Router(), log, nil)
		req := httptest.NewRequest(http.MethodPost, PathOrders, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header[web.HeaderIdempotencyKey] = []string{key}
		}
		if cid != "" {
			req.Header[http.CanonicalHeaderKey(web.HeaderCorrelationID)] = []string{cid}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusAccepted:
			if len(store.created) != 1 {
				t.Fatalf("202 but the store holds %d orders", len(store.created))
			}
			o := store.created[0]
			if o.Total() > MaxTotalCents || len(o.Items) == 0 || len(o.Items) > MaxItems {
				t.Fatalf("accepted an order out of bounds: %d lines, total %d", len(o.Items), o.Total())
			}
		case rec.Code >= 400 && rec.Code < 500:
			var got struct{ Error, Field string }
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.Error == "" || got.Field == "" {
				t.Fatalf("%d with body %q: want a JSON error naming a field", rec.Code, rec.Body)
			}
			if len(store.created) != 0 {
				t.Fatalf("%d, but the order reached the store", rec.Code)
			}
		default:
			t.Fatalf("answered %d (%s) to body %q key %q cid %.40q", rec.Code, rec.Body, body, key, cid)
		}
	})
}
