package idempotency

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stampede-dev/stampede/platform/telemetry"
	"github.com/stampede-dev/stampede/platform/web"
)

// Post is the HTTP side of a called service's forward step (POST
// /v1/reservations, /v1/charges, /v1/shipments): the request is read, done
// once per key in the store, and answered with the Result recorded for the
// key, byte for byte, marked Idempotent-Replayed when it was sent before.
type Post[Req any] struct {
	// Read decodes the request and finds its order and its key; bad input
	// is a *web.Error.
	Read func(r *http.Request) (req Req, orderID, key string, err error)
	// Do does the request with the correlation id it carries (the order id
	// without one) and returns the Result recorded for the key; ErrGone
	// when the caller left before anything was done.
	Do func(ctx context.Context, req Req, key, correlationID string) (Result, error)
	// Reused is the service's error for a key that came back with another
	// request (Scope.Reused), answered 422 naming Idempotency-Key, with
	// Detail saying why.
	Reused error
	Detail string
	Log    *slog.Logger
}

// ErrGone is what Post.Do returns when the caller left before anything was
// done: nothing is answered.
var ErrGone = errors.New("idempotency: the caller left before anything was done")

func (p Post[Req]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, orderID, key, err := p.Read(r)
	if err != nil {
		web.WriteError(w, r, p.Log, err)
		return
	}
	cid, ctx := web.Correlate(r, orderID)
	res, err := p.Do(ctx, req, key, cid)
	switch {
	case err == nil:
		res.Write(w)
	case errors.Is(err, ErrGone) && !errors.Is(r.Context().Err(), context.DeadlineExceeded):
		// The caller left: nobody to answer. (Out of the request's own
		// deadline, WriteError answers 503 below.)
	case errors.Is(err, p.Reused):
		web.WriteError(w, r, p.Log, &web.Error{Status: http.StatusUnprocessableEntity, Message: CodeKeyReused,
			Field: web.HeaderIdempotencyKey, Extra: map[string]any{"detail": p.Detail}})
	default:
		web.WriteError(w, r, p.Log, err)
	}
}

// Write sends res as it was recorded: its status and body, byte for byte,
// marked Idempotent-Replayed when it was sent before.
func (res Result) Write(w http.ResponseWriter) {
	if res.Replayed {
		w.Header().Set(web.HeaderReplayed, "true")
	}
	web.WriteRaw(w, res.Code, res.Body)
}

// KeyOf returns the request's Idempotency-Key (at most max bytes), or
// "order:"+orderID without one, so a request without a key is still done
// once per order.
func KeyOf(r *http.Request, max int, orderID string) (string, error) {
	key, err := web.IdempotencyKey(r, max)
	if err == nil && key == "" {
		key = "order:" + orderID
	}
	return key, err
}

// RefuseSagaOwned turns Guard's refusal in err into its answer, a 409
// CodeSagaOwned naming field (the path's "id", or "orderId") and the order,
// saying what to do instead; any other err is returned as it is.
func RefuseSagaOwned(field string, err error) error {
	var so *SagaOwnedError
	if !errors.As(err, &so) {
		return err
	}
	return &web.Error{Status: http.StatusConflict, Message: CodeSagaOwned, Field: field, Extra: map[string]any{
		"orderId": so.OrderID,
		"detail": "order " + so.OrderID + " is run by its saga, which alone undoes its work: cancel the order (POST /v1/orders/" +
			so.OrderID + "/cancel on the Orders API, honoured until it ships); a failed or cancelled order is compensated by its saga",
	}}
}

// Metrics count what a called service's API did; the zero Metrics records
// nothing. Answered counts its forward step's answers by outcome: the
// status or error code it was answered with, or OutcomeReplayed. Changed
// counts what its other requests changed (a repeat changes nothing and does
// not count), by the labels the service names.
type Metrics struct{ Answered, Changed *telemetry.Counter }

// NewMetrics registers a service's two counters on reg: answered (by
// "outcome") and changed (by changedLabels).
func NewMetrics(reg prometheus.Registerer, answered, answeredHelp, changed, changedHelp string, changedLabels ...string) Metrics {
	return Metrics{
		Answered: telemetry.NewCounter(reg, answered, answeredHelp, "outcome"),
		Changed:  telemetry.NewCounter(reg, changed, changedHelp, changedLabels...),
	}
}
