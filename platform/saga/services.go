package saga

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/stampede-dev/stampede/platform/inventory"
	"github.com/stampede-dev/stampede/platform/payment"
	"github.com/stampede-dev/stampede/platform/shipping"
	"github.com/stampede-dev/stampede/platform/web"
)

// The saga calls the three services with their own contract (api.go): their
// request types, paths, error codes and answer types; what it adds is below.

// ErrTypeBusiness is the ApplicationError type of a business failure (declined
// card, out of stock, undeliverable): never retried, compensated at once. Its
// message is the reason code the service answered (inventory.ErrCodeOutOfStock,
// payment.ErrCodeCardDeclined, ...), or ReasonInvalidRequest.
const ErrTypeBusiness = "BusinessFailure"

// ReasonInvalidRequest is the reason of a 400: the request itself is wrong,
// repeating it cannot help.
const ReasonInvalidRequest = "invalid_request"

// Service names, as they appear in "payments unavailable for 10m0s".
const (
	ServiceInventory = "inventory"
	ServicePayments  = "payments"
	ServiceShipping  = "shipping"
)

// IdempotencyKey is the key of one step (or compensation) of one order.
func IdempotencyKey(orderID, step string) string { return orderID + ":" + step }

// The answers of the forward steps, as the services define them. The
// compensations address the order (PathReleaseByOrder, ...), not these ids,
// so a step whose answer was lost is still undone.
type (
	Reservation = inventory.Reservation  // 201 of POST inventory.PathReservations
	Charge      = payment.ChargeResponse // 201 of POST payment.PathCharges
	Shipment    = shipping.Shipment      // 201 of POST shipping.PathShipments
)

// serviceError is the error body every service answers with.
type serviceError struct {
	Error string `json:"error"`
	SKU   string `json:"sku,omitempty"`
	Field string `json:"field,omitempty"`
}

// businessRule says which non-2xx answers of a call are business failures:
// for each status code, the error codes the body must carry (none: any) and
// the reason to use when the body names none.
type businessRule map[int]struct {
	match    []string
	fallback string
}

// call sends one JSON request and decodes a 2xx answer into out (when not
// nil). An answer matching rules, and any 400 (the request itself is wrong:
// repeating it cannot help), is a non-retryable business ApplicationError;
// anything else that is not 2xx (refused, timeout, 5xx, 429, a key still in
// flight) is a plain, retryable error.
func (a *Activities) call(ctx context.Context, service, method, u, key, cid string, body, out any, rules businessRule) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return temporal.NewNonRetryableApplicationError("encode request: "+err.Error(), "EncodeError", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return temporal.NewNonRetryableApplicationError("build request: "+err.Error(), "EncodeError", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if key != "" {
		req.Header.Set(web.HeaderIdempotencyKey, key)
	}
	if cid != "" {
		req.Header.Set(web.HeaderCorrelationID, cid)
	}
	resp, err := a.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("%s: %s %s: %w", service, method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s: %s %s: read answer: %w", service, method, req.URL.Path, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out != nil && len(bytes.TrimSpace(raw)) > 0 {
			if err := json.Unmarshal(raw, out); err != nil {
				return fmt.Errorf("%s: %s %s: decode answer: %w", service, method, req.URL.Path, err)
			}
		}
		return nil
	}
	var se serviceError
	_ = json.Unmarshal(raw, &se)
	if r, ok := rules[resp.StatusCode]; ok && (len(r.match) == 0 || slices.Contains(r.match, se.Error)) {
		reason := se.Error
		if reason == "" {
			reason = r.fallback
		}
		return temporal.NewNonRetryableApplicationError(reason, ErrTypeBusiness, nil, se)
	}
	if resp.StatusCode == http.StatusBadRequest {
		reason := ReasonInvalidRequest
		if se.Field != "" {
			reason += ": " + se.Field
		}
		return temporal.NewNonRetryableApplicationError(reason, ErrTypeBusiness, nil, se)
	}
	return &httpError{Service: service, Method: method, Path: req.URL.Path, Status: resp.StatusCode, Body: strings.TrimSpace(string(raw))}
}

// httpError is an unexpected answer: retried.
type httpError struct {
	Service, Method, Path string
	Status                int
	Body                  string
}

func (e *httpError) Error() string {
	body := e.Body
	if len(body) > 200 {
		body = body[:200] + "..."
	}
	return fmt.Sprintf("%s: %s %s: HTTP %d: %s", e.Service, e.Method, e.Path, e.Status, body)
}

func (a *Activities) httpClient() *http.Client {
	if a.HTTP != nil {
		return a.HTTP
	}
	return http.DefaultClient
}

func byOrder(base, path, orderID string) string {
	return base + path + "?orderId=" + url.QueryEscape(orderID)
}

// BusinessReason returns the reason code of a business failure anywhere in
// err's chain, and whether there is one.
func BusinessReason(err error) (string, bool) {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.Type() == ErrTypeBusiness {
		return ae.Message(), true
	}
	return "", false
}
