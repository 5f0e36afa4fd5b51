package web

import (
	"context"
	"log/slog"
	"net/http"
)

// ByOrder answers a request about one order (…?orderId=, 1 to 128 bytes),
// such as a list or a compensation by order id, with what do returns for
// it, 200. do gets the request's correlation id (the order id without one)
// and a context that logs it; its error is answered by WriteError.
func ByOrder[T any](log *slog.Logger, do func(ctx context.Context, orderID, correlationID string) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := Query(r, "orderId", 128)
		if err != nil {
			WriteError(w, r, log, err)
			return
		}
		cid, ctx := Correlate(r, id)
		out, err := do(ctx, id, cid)
		if err != nil {
			WriteError(w, r, log, err)
			return
		}
		WriteJSON(w, http.StatusOK, out)
	}
}

// UndoByOrder answers a compensation by order id (…?orderId=) as ByOrder
// does; do also gets the request's Idempotency-Key ("" for none; a 400
// naming the header when it is not text of at most maxKey bytes): the
// order's saga identifies its own compensation by it.
func UndoByOrder[T any](log *slog.Logger, maxKey int, do func(ctx context.Context, orderID, key, correlationID string) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, err := IdempotencyKey(r, maxKey)
		if err != nil {
			WriteError(w, r, log, err)
			return
		}
		ByOrder(log, func(ctx context.Context, orderID, cid string) (T, error) {
			return do(ctx, orderID, key, cid)
		})(w, r)
	}
}
