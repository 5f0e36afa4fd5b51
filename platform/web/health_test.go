package web

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandleHealth(t *testing.T) {
	down := func(context.Context) error { return errors.New("database down") }
	tests := []struct {
		name  string
		ready func(context.Context) error
		path  string
		code  int
		body  string
	}{
		{"ok/healthz", down, PathHealth, http.StatusOK, `{"status":"ok"}`},
		{"ok/readyz without a check", nil, PathReady, http.StatusOK, `{"status":"ready"}`},
		{"ok/readyz", func(context.Context) error { return nil }, PathReady, http.StatusOK, `{"status":"ready"}`},
		{"err/readyz", down, PathReady, http.StatusServiceUnavailable, `{"error":"database down","status":"unavailable"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			HandleHealth(mux, tt.ready)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if got := strings.TrimSpace(rec.Body.String()); rec.Code != tt.code || got != tt.body {
				t.Errorf("GET %s = %d %s, want %d %s", tt.path, rec.Code, got, tt.code, tt.body)
			}
		})
	}
}
