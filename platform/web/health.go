package web

import (
	"context"
	"net/http"
)

// Health routes every Stampede HTTP service serves. The launcher waits on
// PathReady before it calls a service started.
const (
	PathHealth = "/healthz"
	PathReady  = "/readyz"
)

// HandleHealth registers GET /healthz, answered 200 while the process
// serves, and GET /readyz, answered 200 when ready (nil: always) returns nil
// and 503 with its error otherwise.
func HandleHealth(mux *http.ServeMux, ready func(context.Context) error) {
	mux.HandleFunc("GET "+PathHealth, func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET "+PathReady, func(w http.ResponseWriter, r *http.Request) {
		if ready != nil {
			if err := ready(r.Context()); err != nil {
				WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
				return
			}
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}
