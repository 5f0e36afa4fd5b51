package web

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestIdempotencyKey(t *testing.T) {
	tests := []struct {
		name, key string
		want      string
		wantErr   bool
	}{
		{"ok/none", "", "", false},
		{"ok/key", "o-1:ship", "o-1:ship", false},
		{"ok/at the limit", strings.Repeat("k", 8), strings.Repeat("k", 8), false},
		{"err/too long", strings.Repeat("k", 9), "", true},
		{"err/control character", "a\x01b", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			if tt.key != "" {
				r.Header[HeaderIdempotencyKey] = []string{tt.key}
			}
			got, err := IdempotencyKey(r, 8)
			var we *Error
			switch {
			case tt.wantErr && (!errors.As(err, &we) || we.Status != http.StatusBadRequest || we.Field != HeaderIdempotencyKey):
				t.Fatalf("err = %v, want a 400 naming %s", err, HeaderIdempotencyKey)
			case !tt.wantErr && (err != nil || got != tt.want):
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestCorrelate(t *testing.T) {
	for _, tt := range []struct{ name, header, want string }{
		{"ok/header", "run-1:o-1", "run-1:o-1"},
		{"ok/none: the order id", "", "o-1"},
		{"ok/too long: the order id", strings.Repeat("c", MaxCorrelationID+1), "o-1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			if tt.header != "" {
				r.Header.Set(HeaderCorrelationID, tt.header)
			}
			cid, _ := Correlate(r, "o-1")
			if cid != tt.want {
				t.Errorf("Correlate = %q, want %q", cid, tt.want)
			}
		})
	}
}

func TestQuery(t *testing.T) {
	for _, tt := range []struct{ name, query, want string }{
		{"ok/present", "?orderId=o-1", "o-1"},
		{"err/missing", "", ""},
		{"err/too long", "?orderId=" + strings.Repeat("o", 129), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Query(httptest.NewRequest(http.MethodGet, "/"+tt.query, nil), "orderId", 128)
			var we *Error
			if tt.want == "" && (!errors.As(err, &we) || we.Field != "orderId" || we.Status != http.StatusBadRequest) {
				t.Fatalf("err = %v, want a 400 naming orderId", err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
