package telemetry

import (
	"net/http"
	"net/http/pprof"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsHandler serves the registry in the Prometheus exposition format,
// with exemplars when the scraper asks for OpenMetrics.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true, Registry: reg})
}

// EnvPprof, set to 1, adds Go's /debug/pprof/ to the admin mux of the relay,
// orchestrators and workers (off by default: profiling is for diagnosis, e.g.
// `go tool pprof http://127.0.0.1:8096/debug/pprof/profile?seconds=30`).
const EnvPprof = "STAMPEDE_PPROF"

// AdminMux returns a mux with /metrics and /healthz, for processes that serve
// no API of their own (relay, orchestrator, worker), and /debug/pprof/ when
// STAMPEDE_PPROF=1.
func AdminMux(reg *prometheus.Registry) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", MetricsHandler(reg))
	if os.Getenv(EnvPprof) == "1" {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}`))
	})
	return mux
}
