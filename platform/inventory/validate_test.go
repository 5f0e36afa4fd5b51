package inventory

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stampede-dev/stampede/platform/web"
)

func TestDecodeReserve(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantField string // "" = valid
		wantItems []Item
	}{
		{"ok/one line", `{"orderId":"o1","items":[{"sku":"SKU-00001","qty":2}]}`, "", []Item{{"SKU-00001", 2}}},
		{"ok/merges lines of one sku", `{"orderId":"o1","items":[{"sku":"B","qty":2},{"sku":"A","qty":1},{"sku":"B","qty":3}]}`, "", []Item{{"B", 5}, {"A", 1}}},
		{"err/not an object", `[1]`, "body", nil},
		{"err/duplicate key", `{"orderId":"o1","orderId":"o2","items":[{"sku":"A","qty":1}]}`, "orderId", nil},
		{"err/duplicate key in a line", `{"orderId":"o1","items":[{"sku":"A","qty":1,"qty":1000}]}`, "items[0].qty", nil},
		{"err/NUL in orderId", `{"orderId":"o\u0000","items":[{"sku":"A","qty":1}]}`, "orderId", nil},
		{"err/unknown field", `{"orderId":"o1","items":[{"sku":"A","qty":1}],"x":1}`, "x", nil},
		{"err/missing orderId", `{"items":[{"sku":"A","qty":1}]}`, "orderId", nil},
		{"err/empty orderId", `{"orderId":" ","items":[{"sku":"A","qty":1}]}`, "orderId", nil},
		{"err/orderId not a string", `{"orderId":5,"items":[{"sku":"A","qty":1}]}`, "orderId", nil},
		{"err/items missing", `{"orderId":"o1"}`, "items", nil},
		{"err/items empty", `{"orderId":"o1","items":[]}`, "items", nil},
		{"err/items not array", `{"orderId":"o1","items":{}}`, "items", nil},
		{"err/sku missing", `{"orderId":"o1","items":[{"qty":1}]}`, "items[0].sku", nil},
		{"err/qty zero", `{"orderId":"o1","items":[{"sku":"A","qty":1},{"sku":"B","qty":0}]}`, "items[1].qty", nil},
		{"err/qty fraction", `{"orderId":"o1","items":[{"sku":"A","qty":1.5}]}`, "items[0].qty", nil},
		{"err/qty string", `{"orderId":"o1","items":[{"sku":"A","qty":"1"}]}`, "items[0].qty", nil},
		{"err/line unknown field", `{"orderId":"o1","items":[{"sku":"A","qty":1,"priceCents":3}]}`, "items[0].priceCents", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := decodeReserve([]byte(tt.body))
			if strings.HasPrefix(tt.name, "ok/") {
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				if len(req.Items) != len(tt.wantItems) {
					t.Fatalf("got items %v, want %v", req.Items, tt.wantItems)
				}
				for i := range req.Items {
					if req.Items[i] != tt.wantItems[i] {
						t.Fatalf("got items %v, want %v", req.Items, tt.wantItems)
					}
				}
				return
			}
			var we *web.Error
			if !errors.As(err, &we) {
				t.Fatalf("got %v, want a *web.Error", err)
			}
			if we.Status != http.StatusBadRequest || we.Field != tt.wantField {
				t.Fatalf("got %d field %q (%v), want 400 field %q", we.Status, we.Field, we, tt.wantField)
			}
		})
	}
}

// Bad input is refused before the store is touched (the store is nil here).
func TestHandlersRefuseBadInputWithoutStore(t *testing.T) {
	svc := &Service{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h := web.Middleware(svc.Router(), svc.Log, nil)
	tests := []struct {
		name, method, path, ctype, key, body string
		wantCode                             int
		wantField                            string
	}{
		{"err/content type", "POST", "/v1/reservations", "text/plain", "", `{}`, 415, "Content-Type"},
		{"err/invalid json", "POST", "/v1/reservations", "application/json", "", `{`, 400, "body"},
		{"err/bad body", "POST", "/v1/reservations", "application/json", "", `{"orderId":"o","items":[]}`, 400, "items"},
		{"err/key too long", "POST", "/v1/reservations", "application/json", strings.Repeat("k", 256), `{"orderId":"o","items":[{"sku":"A","qty":1}]}`, 400, web.HeaderIdempotencyKey},
		{"err/list without orderId", "GET", "/v1/reservations", "", "", "", 400, "orderId"},
		{"err/release by order without orderId", "POST", "/v1/reservations/release", "", "", "", 400, "orderId"},
		{"err/release by order with NUL in orderId", "POST", "/v1/reservations/release?orderId=o%00", "", "", "", 400, "orderId"},
		{"err/list with a non-UTF-8 orderId", "GET", "/v1/reservations?orderId=%FF", "", "", "", 400, "orderId"},
		{"err/stock of a NUL sku", "GET", "/v1/stock/a%00b", "", "", "", 400, "sku"},
		{"err/stock of a non-UTF-8 sku", "GET", "/v1/stock/%FF", "", "", "", 400, "sku"},
		{"err/stock of a 65-character sku", "GET", "/v1/stock/" + strings.Repeat("s", 65), "", "", "", 400, "sku"},
		{"err/duplicate key", "POST", "/v1/reservations", "application/json", "", `{"orderId":"o","orderId":"p","items":[{"sku":"A","qty":1}]}`, 400, "orderId"},
		{"err/non-UTF-8 key", "POST", "/v1/reservations", "application/json", "k\xff", `{"orderId":"o","items":[{"sku":"A","qty":1}]}`, 400, web.HeaderIdempotencyKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			if tt.key != "" {
				r.Header.Set(web.HeaderIdempotencyKey, tt.key)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantCode || !strings.Contains(w.Body.String(), `"field":"`+tt.wantField+`"`) && tt.wantField != "" {
				t.Fatalf("got %d %s, want %d naming %q", w.Code, w.Body, tt.wantCode, tt.wantField)
			}
		})
	}
}
