package web

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stampede-dev/stampede/platform/telemetry"
)

func TestValidCorrelationID(t *testing.T) {
	for _, ok := range []string{"a", "order-1", "20261202T143847Z-chaos-short:black_friday:s1:i2853", "0c37cbf7-9527-4e2a-8fca-3364eda5ab00", strings.Repeat("x", 128), "a.b_c:d/e@f+g=h-i"} {
		if !ValidCorrelationID(ok) {
			t.Errorf("ValidCorrelationID(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", strings.Repeat("x", 129), "\xff", "a\x00b", "a b", "ä", "a\nb", "<script>", strings.Repeat("y", 600<<10)} {
		if ValidCorrelationID(bad) {
			t.Errorf("ValidCorrelationID(%.40q) = true", bad)
		}
	}
}

// Every service sits behind Middleware: a correlation id it cannot store,
// log or forward is a 400 naming the header, never a panic, an empty reply or
// a handler call.
func TestMiddlewareRefusesBadCorrelationIDs(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, "test")
	var got string
	calls := 0
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/things", func(w http.ResponseWriter, r *http.Request) {
		calls++
		got = telemetry.CorrelationID(r.Context())
		w.WriteHeader(http.StatusAccepted)
	})
	h := Middleware(mux, slog.New(slog.DiscardHandler), m)

	tests := []struct {
		name   string
		cid    string
		status int
	}{
		{"ok/none", "", http.StatusAccepted},
		{"ok/plain", "run-1:order-7", http.StatusAccepted},
		{"err/600 KB", strings.Repeat("c", 600<<10), http.StatusBadRequest},
		{"err/not UTF-8", "\xff", http.StatusBadRequest},
		{"err/NUL", "a\x00b", http.StatusBadRequest},
		{"err/129 chars", strings.Repeat("c", 129), http.StatusBadRequest},
		{"err/space", "a b", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls, got = 0, ""
			req := httptest.NewRequest(http.MethodPost, "/v1/things", strings.NewReader("{}"))
			if tt.cid != "" {
				req.Header[http.CanonicalHeaderKey(HeaderCorrelationID)] = []string{tt.cid}
			}
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, req)
			if rr.Code != tt.status {
				t.Fatalf("status %d, want %d (%s)", rr.Code, tt.status, rr.Body)
			}
			if tt.status == http.StatusBadRequest {
				if calls != 0 {
					t.Fatal("the handler ran for a refused correlation id")
				}
				var body struct{ Error, Field string }
				if err := json.Unmarshal(rr.Body.Bytes(), &body); err != nil || body.Field != HeaderCorrelationID || body.Error == "" {
					t.Fatalf("body %q: want an error naming %s", rr.Body, HeaderCorrelationID)
				}
				if rr.Header().Get(HeaderCorrelationID) != "" {
					t.Fatal("a refused correlation id was echoed back")
				}
				return
			}
			if calls != 1 || got != tt.cid {
				t.Fatalf("handler calls %d, correlation id %q; want 1, %q", calls, got, tt.cid)
			}
		})
	}
}
