package payment

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

func TestDecodeCharge(t *testing.T) {
	tests := []struct {
		name, body, wantField string
	}{
		{"ok/charge", `{"orderId":"o1","amountCents":4498,"currency":"USD","token":"tok_visa"}`, ""},
		{"ok/zero amount", `{"orderId":"o1","amountCents":0,"currency":"EUR","token":"tok_visa"}`, ""},
		{"err/not an object", `"x"`, "body"},
		{"err/duplicate key", `{"orderId":"o1","amountCents":1,"amountCents":100000,"currency":"USD","token":"t"}`, "amountCents"},
		{"err/NUL in token", `{"orderId":"o1","amountCents":1,"currency":"USD","token":"t\u0000"}`, "token"},
		{"err/unknown field", `{"orderId":"o1","amountCents":1,"currency":"USD","token":"t","tip":1}`, "tip"},
		{"err/orderId missing", `{"amountCents":1,"currency":"USD","token":"t"}`, "orderId"},
		{"err/amount missing", `{"orderId":"o1","currency":"USD","token":"t"}`, "amountCents"},
		{"err/amount negative", `{"orderId":"o1","amountCents":-1,"currency":"USD","token":"t"}`, "amountCents"},
		{"err/amount fraction", `{"orderId":"o1","amountCents":1.5,"currency":"USD","token":"t"}`, "amountCents"},
		{"err/amount string", `{"orderId":"o1","amountCents":"100","currency":"USD","token":"t"}`, "amountCents"},
		{"err/amount too big", `{"orderId":"o1","amountCents":100000000001,"currency":"USD","token":"t"}`, "amountCents"},
		{"err/currency length", `{"orderId":"o1","amountCents":1,"currency":"US","token":"t"}`, "currency"},
		{"err/currency lower case", `{"orderId":"o1","amountCents":1,"currency":"usd","token":"t"}`, "currency"},
		{"err/token empty", `{"orderId":"o1","amountCents":1,"currency":"USD","token":""}`, "token"},
		{"err/token null", `{"orderId":"o1","amountCents":1,"currency":"USD","token":null}`, "token"},
		{"ok/payment reference", `{"orderId":"o1","amountCents":1,"currency":"USD","paymentRef":"pref_0123456789abcdef0123456789abcdef"}`, ""},
		{"err/neither token nor reference", `{"orderId":"o1","amountCents":1,"currency":"USD"}`, "token"},
		{"err/token and reference", `{"orderId":"o1","amountCents":1,"currency":"USD","token":"t","paymentRef":"pref_0123456789abcdef0123456789abcdef"}`, "paymentRef"},
		{"err/reference not one", `{"orderId":"o1","amountCents":1,"currency":"USD","paymentRef":"tok_visa"}`, "paymentRef"},
		{"err/reference empty", `{"orderId":"o1","amountCents":1,"currency":"USD","paymentRef":""}`, "paymentRef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeCharge([]byte(tt.body))
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

func TestDeclineTokens(t *testing.T) {
	for token, want := range map[string]string{"tok_declined": "card_declined", "tok_insufficient_funds": "insufficient_funds", "tok_visa": ""} {
		if got := decline(token); got != want {
			t.Errorf("decline(%q) = %q, want %q", token, got, want)
		}
	}
}

// Bad input is refused before the store is touched (the store is nil here).
func TestHandlersRefuseBadInputWithoutStore(t *testing.T) {
	svc := &Service{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h := web.Middleware(svc.Router(), svc.Log, nil)
	ok := `{"orderId":"o","amountCents":1,"currency":"USD","token":"t"}`
	tests := []struct {
		name, method, path, key, body string
		wantCode                      int
		wantField                     string
	}{
		{"err/missing key", "POST", "/v1/charges", "", ok, 400, web.HeaderIdempotencyKey},
		{"err/key too long", "POST", "/v1/charges", strings.Repeat("k", 256), ok, 400, web.HeaderIdempotencyKey},
		{"err/bad body", "POST", "/v1/charges", "k", `{"orderId":"o"}`, 400, "amountCents"},
		{"err/list without orderId", "GET", "/v1/charges", "", "", 400, "orderId"},
		{"err/refund by order without orderId", "POST", "/v1/refunds", "", "", 400, "orderId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			r.Header.Set("Content-Type", "application/json")
			if tt.key != "" {
				r.Header.Set(web.HeaderIdempotencyKey, tt.key)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantCode || !strings.Contains(w.Body.String(), `"field":"`+tt.wantField+`"`) {
				t.Fatalf("got %d %s, want %d naming %q", w.Code, w.Body, tt.wantCode, tt.wantField)
			}
		})
	}
}
