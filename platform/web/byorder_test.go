package web

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestByOrder(t *testing.T) {
	tests := []struct {
		name, target, cid string
		err               error
		wantCode          int
		wantBody          string
		wantCID           string
	}{
		{"ok/answer", "/v1/things?orderId=o-1", "", nil, 200, `{"orderId":"o-1"}`, "o-1"},
		{"ok/the request's correlation id", "/v1/things?orderId=o-1", "run-1", nil, 200, `{"orderId":"o-1"}`, "run-1"},
		{"err/no orderId", "/v1/things", "", nil, 400, `{"error":"query parameter orderId is required (at most 128 characters)","field":"orderId"}`, ""},
		{"err/refused", "/v1/things?orderId=o-1", "", Errorf(http.StatusConflict, "", "already_delivered"), 409, `{"error":"already_delivered"}`, "o-1"},
		{"err/store down", "/v1/things?orderId=o-1", "", errors.New("conn reset"), 500, `{"error":"internal error"}`, "o-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotCID string
			h := ByOrder(slog.New(slog.NewTextHandler(io.Discard, nil)), func(_ context.Context, orderID, cid string) (map[string]string, error) {
				gotCID = cid
				return map[string]string{"orderId": orderID}, tt.err
			})
			r := httptest.NewRequest(http.MethodPost, tt.target, nil)
			if tt.cid != "" {
				r.Header.Set(HeaderCorrelationID, tt.cid)
			}
			w := httptest.NewRecorder()
			h(w, r)
			if w.Code != tt.wantCode || strings.TrimSpace(w.Body.String()) != tt.wantBody || gotCID != tt.wantCID {
				t.Errorf("got %d %s (correlation id %q), want %d %s (%q)", w.Code, strings.TrimSpace(w.Body.String()), gotCID, tt.wantCode, tt.wantBody, tt.wantCID)
			}
		})
	}
}
