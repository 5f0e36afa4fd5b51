package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// Limits bound what the requests of one server may hold, so that one slow
// dependency or one flood of clients never stalls it: a request beyond
// MaxInFlight is turned away at once, and every store or Temporal call a
// handler makes with the request's context ends at the request's deadline.
type Limits struct {
	// MaxInFlight is how many requests are served at once; one beyond it is
	// answered 503 with Retry-After before any handler runs (0: no cap).
	// /healthz, /readyz and /metrics are never turned away: the launcher and
	// Prometheus must still see a busy service.
	MaxInFlight int
	// Timeout is the deadline of every request's context (0: none). A store
	// or Temporal call that has not answered by then returns, and WriteError
	// answers 503 with Retry-After: a frozen PostgreSQL gives a quick 503,
	// never a client left hanging.
	Timeout time.Duration
}

// Defaults of Limits, as the services' --max-in-flight and
// --request-timeout flags take them. A called service answers in tens of
// milliseconds and the saga gives one call 3 s; 256 requests in flight is
// ten times what the 5x chaos load holds at once on a service.
const (
	DefaultMaxInFlight    = 256
	DefaultRequestTimeout = 5 * time.Second
)

// RetryAfter is the Retry-After (seconds) of a 503 this package writes.
const RetryAfter = 1

// Validate names the limit that makes no sense.
func (l Limits) Validate() error {
	switch {
	case l.MaxInFlight < 0:
		return errors.New("max-in-flight: want 0 (no cap) or more")
	case l.Timeout < 0:
		return errors.New("request-timeout: want 0 (none) or more")
	}
	return nil
}

// exempt are the paths a busy server still answers: health for the
// launcher, metrics for Prometheus. None of them waits on a store for long
// (/readyz pings it under the request's deadline).
func exempt(path string) bool {
	return path == PathHealth || path == PathReady || path == "/metrics"
}

// Limit applies l to every request of next: the in-flight cap (503 +
// Retry-After beyond it, counted in m's shed counter) and the deadline of
// the request's context. Put it inside Middleware, so refused requests are
// logged and counted like the rest.
func Limit(next http.Handler, l Limits, m *Metrics) http.Handler {
	var slots chan struct{}
	if l.MaxInFlight > 0 {
		slots = make(chan struct{}, l.MaxInFlight)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slots != nil && !exempt(r.URL.Path) {
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			default:
				if m != nil {
					m.shed.Inc()
				}
				w.Header().Set("Retry-After", strconv.Itoa(RetryAfter))
				WriteJSON(w, http.StatusServiceUnavailable, map[string]any{
					"error": "server busy: " + strconv.Itoa(l.MaxInFlight) + " requests in flight; retry later"})
				return
			}
		}
		if l.Timeout > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), l.Timeout)
			defer cancel()
			r = r.WithContext(ctx)
			// The body is read by the deadline too: a client trickling it
			// (slow loris) gets a 408 then, not the server's ReadTimeout.
			// A little after the context's deadline: net/http cancels the
			// request's context when its read of the connection fails, and
			// the context's own deadline must come first to be seen as one.
			// (Not every ResponseWriter supports it; a test recorder does not.)
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(l.Timeout + readDeadlineMargin))
		}
		next.ServeHTTP(w, r)
	})
}

// readDeadlineMargin is how long after a request's deadline its connection's
// read deadline falls.
const readDeadlineMargin = 500 * time.Millisecond

// timedOut reports whether err, or the request it answers, ran out of the
// request's deadline: a store or Temporal call that did not answer in time.
// A context cancelled once the deadline has passed counts too (net/http
// cancels it when the connection's read deadline ends its background read).
func timedOut(r *http.Request, err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(r.Context().Err(), context.DeadlineExceeded) {
		return true
	}
	dl, ok := r.Context().Deadline()
	return ok && r.Context().Err() != nil && !time.Now().Before(dl)
}
