// Package web holds what every Stampede HTTP service shares: JSON responses
// (and recorded answers replayed byte for byte), errors that name the
// offending field, request-body limits and the strict decoder, the
// Idempotency-Key and correlation-id headers, /healthz and /readyz, and the
// middleware that carries the correlation id and records request metrics.
//
// It must never know about any one service's routes or types.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Error is an error that knows its HTTP status and, for bad input, the field it is about.
type Error struct {
	Status  int
	Message string // short machine-friendly code or sentence, sent as "error"
	Field   string // e.g. "items[0].qty"; empty when not about one field
	Extra   map[string]any
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Message)
	}
	return e.Message
}

// Errorf returns an *Error for status about field.
func Errorf(status int, field, format string, args ...any) *Error {
	return &Error{Status: status, Field: field, Message: fmt.Sprintf(format, args...)}
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// WriteRaw writes body, JSON already encoded (a recorded answer replayed
// byte for byte), with status.
func WriteRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
	w.Write([]byte("\n"))
}

// WriteError writes err as {"error": ..., "field": ...}. Errors that are not
// *Error are internal: they are logged and answered with a 500 that hides
// them, or with a 503 and Retry-After when the request ran out of its
// deadline (Limits.Timeout: a store or Temporal call did not answer in time).
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var we *Error
	if !errors.As(err, &we) {
		if timedOut(r, err) {
			if log != nil {
				log.WarnContext(r.Context(), "request ran out of its deadline", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			w.Header().Set("Retry-After", strconv.Itoa(RetryAfter))
			we = &Error{Status: http.StatusServiceUnavailable, Message: "a dependency did not answer within the request's deadline; retry later"}
		} else {
			if log != nil {
				log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			we = &Error{Status: http.StatusInternalServerError, Message: "internal error"}
		}
	}
	body := map[string]any{"error": we.Message}
	if we.Field != "" {
		body["field"] = we.Field
	}
	for k, v := range we.Extra {
		body[k] = v
	}
	WriteJSON(w, we.Status, body)
}

// ReadJSONBody checks the content type and size of a JSON request body and
// returns it: 415 when it is not JSON, 413 when over max bytes, 400 when it
// is not valid JSON. The caller decodes and validates the fields.
func ReadJSONBody(r *http.Request, max int64) ([]byte, error) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		return nil, Errorf(http.StatusUnsupportedMediaType, "Content-Type", "content type must be application/json")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		// A client trickling its body past the request's deadline (Limits).
		return nil, Errorf(http.StatusRequestTimeout, FieldBody, "body not received within the request's deadline")
	case err != nil:
		return nil, Errorf(http.StatusBadRequest, FieldBody, "read body: %v", err)
	}
	if int64(len(body)) > max {
		return nil, Errorf(http.StatusRequestEntityTooLarge, FieldBody, "body larger than %d bytes", max)
	}
	if !json.Valid(body) {
		return nil, Errorf(http.StatusBadRequest, FieldBody, "invalid JSON")
	}
	if err := CheckDuplicateKeys(body); err != nil {
		return nil, err
	}
	return body, nil
}

// FieldBody is the field an error about the request body as a whole names:
// not JSON, too large, not an object.
const FieldBody = "body"

// DecodeBody reads r's JSON body as ReadJSONBody does and decodes it with
// decode, a strict decoder of this package's kind.
func DecodeBody[T any](r *http.Request, max int64, decode func(body []byte) (T, error)) (T, error) {
	body, err := ReadJSONBody(r, max)
	if err != nil {
		var zero T
		return zero, err
	}
	return decode(body)
}

// MaxHeaderBytes bounds a request's header block on every Stampede server.
const MaxHeaderBytes = 16 << 10

// Serve runs h on addr until ctx is done, then shuts down gracefully within grace.
// It fails at once, naming the address, when the port is taken.
func Serve(ctx context.Context, addr string, h http.Handler, grace time.Duration) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (is the port already in use?): %w", addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// A client that trickles its body or never reads the answer holds a
		// connection for at most this long (a 30 s pprof profile still fits).
		ReadTimeout:  30 * time.Second,
		WriteTimeout: 60 * time.Second,
		IdleTimeout:  120 * time.Second,
		// No request of the platform's needs more; beyond it net/http answers
		// 431 before any handler runs.
		MaxHeaderBytes: MaxHeaderBytes,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down %s: %w", addr, err)
	}
	return nil
}
