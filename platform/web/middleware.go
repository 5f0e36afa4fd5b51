package web

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/telemetry"
)

// HeaderCorrelationID carries the correlation id between services.
const HeaderCorrelationID = "X-Correlation-ID"

// MaxCorrelationID is the longest correlation id a request may carry.
const MaxCorrelationID = event.MaxCorrelationID

// ValidCorrelationID reports whether s may serve as a correlation id: 1 to
// 128 characters, each a letter, a digit or one of . _ : / @ + = -. The id
// is stored with the order, written into every outbox row and Kafka header,
// logged by every hop and used as a metrics exemplar, so anything else (a
// 600 KB header that no Kafka batch can hold, bytes that are not UTF-8, a
// NUL that PostgreSQL refuses) is turned away at the door. The rule is the
// event envelope's (event.ValidCorrelationID), so what one hop accepts the
// next one does too.
func ValidCorrelationID(s string) bool { return event.ValidCorrelationID(s) }

// Correlate returns the request's correlation id, or orderID when it
// carries none (every hop of an order uses its id when no other was given),
// and the request's context carrying it for the logs.
func Correlate(r *http.Request, orderID string) (string, context.Context) {
	cid := r.Header.Get(HeaderCorrelationID)
	if cid == "" || len(cid) > MaxCorrelationID {
		cid = orderID
	}
	return cid, telemetry.WithCorrelationID(r.Context(), cid)
}

// Metrics are the request metrics every service records.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	shed     prometheus.Counter
}

// NewMetrics registers the HTTP metrics of service on reg.
func NewMetrics(reg prometheus.Registerer, service string) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "stampede_http_requests_total",
			Help:        "HTTP requests served, by route, method and status code.",
			ConstLabels: prometheus.Labels{"service": service},
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "stampede_http_request_duration_seconds",
			Help:        "HTTP request duration, by route, method and status code.",
			ConstLabels: prometheus.Labels{"service": service},
			Buckets:     []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "stampede_http_requests_in_flight",
			Help:        "HTTP requests being served right now.",
			ConstLabels: prometheus.Labels{"service": service},
		}),
		shed: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "stampede_http_requests_shed_total",
			Help:        "HTTP requests turned away with 503 because the service already served its --max-in-flight requests.",
			ConstLabels: prometheus.Labels{"service": service},
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight, m.shed)
	return m
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (Limit sets the
// body's read deadline through it).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Middleware wraps a ServeMux: it takes or makes the correlation id, puts it
// in the request context and the response, recovers panics as 500s, logs
// failures and records metrics labelled with the matched route pattern. A
// request whose correlation id is not ValidCorrelationID is answered 400
// (field X-Correlation-ID) before any handler sees it.
func Middleware(next http.Handler, log *slog.Logger, m *Metrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// A request without a correlation id gets none here: the handler that
		// creates an order uses the order id, as every later hop will.
		cid := r.Header.Get(HeaderCorrelationID)
		badCID := cid != "" && !ValidCorrelationID(cid)
		if !badCID && cid != "" {
			w.Header().Set(HeaderCorrelationID, cid)
			r = r.WithContext(telemetry.WithCorrelationID(r.Context(), cid))
		}
		rec := &statusRecorder{ResponseWriter: w}
		// Handlers between here and the mux (Limit, Guard) pass on copies
		// of the request, so the pattern the mux matched comes back through
		// the context, not through r.Pattern.
		slot := new(string)
		r = r.WithContext(context.WithValue(r.Context(), routeKey{}, slot))
		if m != nil {
			m.inFlight.Inc()
		}
		defer func() {
			if m != nil {
				m.inFlight.Dec()
			}
			if p := recover(); p != nil {
				log.ErrorContext(r.Context(), "panic in handler", "path", r.URL.Path, "panic", p)
				if rec.status == 0 {
					WriteError(rec, r, nil, Errorf(http.StatusInternalServerError, "", "internal error"))
				}
			}
			if rec.status == 0 {
				rec.status = http.StatusOK
			}
			route := *slot
			if route == "" {
				route = r.Pattern // set by ServeMux when it was given this request
			}
			if route == "" {
				route = "unmatched"
			}
			code := strconv.Itoa(rec.status)
			if m != nil {
				m.requests.WithLabelValues(route, r.Method, code).Inc()
				obs := m.duration.WithLabelValues(route, r.Method, code)
				secs := time.Since(start).Seconds()
				// The correlation id as an exemplar links a slow request on a
				// dashboard to its logs (client_golang refuses labels over 128 runes).
				if cid := telemetry.CorrelationID(r.Context()); cid != "" && len(cid) <= 100 {
					obs.(prometheus.ExemplarObserver).ObserveWithExemplar(secs, prometheus.Labels{"correlation_id": cid})
				} else {
					obs.Observe(secs)
				}
			}
			if rec.status >= 500 {
				log.WarnContext(r.Context(), "request answered with server error", "route", route, "method", r.Method, "code", rec.status, "duration_ms", time.Since(start).Milliseconds())
			} else {
				log.DebugContext(r.Context(), "request", "route", route, "method", r.Method, "code", rec.status, "duration_ms", time.Since(start).Milliseconds())
			}
		}()
		if badCID {
			WriteError(rec, r, nil, Errorf(http.StatusBadRequest, HeaderCorrelationID,
				"%s must be 1 to %d characters of letters, digits and . _ : / @ + = -", HeaderCorrelationID, MaxCorrelationID))
			return
		}
		next.ServeHTTP(rec, r)
	})
}

type routeKey struct{}

// SetRoute records the route pattern a request matched, for Middleware's
// metrics and logs. Guard calls it; a handler that routes by itself may.
func SetRoute(ctx context.Context, pattern string) {
	if slot, ok := ctx.Value(routeKey{}).(*string); ok {
		*slot = pattern
	}
}
