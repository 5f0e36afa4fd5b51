package shipping

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

const okAddr = `{"name":"Ada","line1":"1 Main St","city":"Springfield","postalCode":"12345","country":"US"}`

func TestDecodeCreate(t *testing.T) {
	tests := []struct {
		name, body, wantField string
	}{
		{"ok/minimal", `{"orderId":"o1","items":[{"sku":"A","qty":1}],"address":` + okAddr + `}`, ""},
		{"ok/order lines with prices", `{"orderId":"o1","items":[{"sku":"A","qty":1,"priceCents":100,"warehouseId":"WH-1"}],"address":` + okAddr + `}`, ""},
		{"ok/undeliverable is not a validation error", `{"orderId":"o1","items":[{"sku":"A","qty":1}],"address":{"name":"A","line1":"x","city":"c","postalCode":"00000","country":"XX"}}`, ""},
		{"err/unknown field", `{"orderId":"o1","items":[{"sku":"A","qty":1}],"address":` + okAddr + `,"x":1}`, "x"},
		{"err/orderId missing", `{"items":[{"sku":"A","qty":1}],"address":` + okAddr + `}`, "orderId"},
		{"err/items empty", `{"orderId":"o1","items":[],"address":` + okAddr + `}`, "items"},
		{"err/qty zero", `{"orderId":"o1","items":[{"sku":"A","qty":0}],"address":` + okAddr + `}`, "items[0].qty"},
		{"err/price negative", `{"orderId":"o1","items":[{"sku":"A","qty":1,"priceCents":-1}],"address":` + okAddr + `}`, "items[0].priceCents"},
		{"err/address missing", `{"orderId":"o1","items":[{"sku":"A","qty":1}]}`, "address"},
		{"err/address not object", `{"orderId":"o1","items":[{"sku":"A","qty":1}],"address":"here"}`, "address"},
		{"err/city missing", `{"orderId":"o1","items":[{"sku":"A","qty":1}],"address":{"name":"A","line1":"x","postalCode":"1","country":"US"}}`, "address.city"},
		{"err/country length", `{"orderId":"o1","items":[{"sku":"A","qty":1}],"address":{"name":"A","line1":"x","city":"c","postalCode":"1","country":"USA"}}`, "address.country"},
		{"err/country lower case", `{"orderId":"o1","items":[{"sku":"A","qty":1}],"address":{"name":"A","line1":"x","city":"c","postalCode":"1","country":"us"}}`, "address.country"},
		{"err/not an object", `[]`, "body"},
		{"err/duplicate key", `{"orderId":"o1","items":[{"sku":"A","qty":1}],"address":` + okAddr + `,"orderId":"o2"}`, "orderId"},
		{"err/duplicate key in the address", `{"orderId":"o1","items":[{"sku":"A","qty":1}],"address":{"name":"A","line1":"x","city":"c","postalCode":"1","country":"US","country":"XX"}}`, "address.country"},
		{"err/address unknown field", `{"orderId":"o1","items":[{"sku":"A","qty":1}],"address":{"name":"A","line1":"x","city":"c","postalCode":"1","country":"US","zip":"1"}}`, "address.zip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeCreate([]byte(tt.body))
			if strings.HasPrefix(tt.name, "ok/") {
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				return
			}
			var we *web.Error
			if !errors.As(err, &we) || we.Status != http.StatusBadRequest || we.Field != tt.wantField {
				t.Fatalf("got %v, want 400 naming %q", err, tt.wantField)
			}
		})
	}
}

func TestUndeliverable(t *testing.T) {
	tests := []struct {
		a    Address
		want string
	}{
		{Address{Country: "US", PostalCode: "12345"}, ""},
		{Address{Country: "XX", PostalCode: "12345"}, "address.country"},
		{Address{Country: "DE", PostalCode: "00000"}, "address.postalCode"},
	}
	for _, tt := range tests {
		if got := undeliverable(tt.a); got != tt.want {
			t.Errorf("undeliverable(%+v) = %q, want %q", tt.a, got, tt.want)
		}
	}
}

// Bad input is refused before the store is touched (the store is nil here).
func TestHandlersRefuseBadInputWithoutStore(t *testing.T) {
	svc := &Service{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h := web.Middleware(svc.Router(), svc.Log, nil)
	tests := []struct {
		name, method, path, body string
		wantCode                 int
		wantField                string
	}{
		{"err/bad body", "POST", "/v1/shipments", `{"orderId":"o"}`, 400, "items"},
		{"err/list without orderId", "GET", "/v1/shipments", "", 400, "orderId"},
		{"err/cancel by order without orderId", "POST", "/v1/shipments/cancel", "", 400, "orderId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantCode || !strings.Contains(w.Body.String(), `"field":"`+tt.wantField+`"`) {
				t.Fatalf("got %d %s, want %d naming %q", w.Code, w.Body, tt.wantCode, tt.wantField)
			}
		})
	}
}
