package payment

import (
	"net/http"

	"github.com/stampede-dev/stampede/platform/vault"
	"github.com/stampede-dev/stampede/platform/web"
)

// decodeCharge strictly decodes and validates a POST /v1/charges body.
func decodeCharge(body []byte) (ChargeRequest, error) {
	var req ChargeRequest
	top, err := web.Object(body, "", []string{"orderId", "amountCents", "currency"}, []string{"token", "paymentRef"})
	if err != nil {
		return req, err
	}
	if req.OrderID, err = web.String(top, "orderId", "", 1, 128); err != nil {
		return req, err
	}
	if req.AmountCents, err = web.Integer(top, "amountCents", "", 0, MaxAmountCents); err != nil {
		return req, err
	}
	if req.Currency, err = web.String(top, "currency", "", 3, 3); err != nil {
		return req, err
	}
	for _, c := range req.Currency {
		if c < 'A' || c > 'Z' {
			return req, web.BadRequest("currency", "want an upper-case ISO 4217 code such as USD, got %q", req.Currency)
		}
	}
	_, hasToken := top["token"]
	_, hasRef := top["paymentRef"]
	switch {
	case hasToken && hasRef:
		return req, web.BadRequest("paymentRef", "send paymentRef or token, not both")
	case hasRef:
		if req.PaymentRef, err = web.String(top, "paymentRef", "", 1, 64); err != nil {
			return req, err
		}
		if !vault.ValidRef(req.PaymentRef) {
			return req, web.BadRequest("paymentRef", "not a payment reference (%s and 32 hex digits)", vault.RefPrefix)
		}
	default:
		if req.Token, err = web.String(top, "token", "", 1, 255); err != nil {
			return req, err
		}
	}
	return req, nil
}

// readCharge reads a POST /v1/charges: its Idempotency-Key, required (a
// charge is only safe to retry with one), then its body.
func readCharge(r *http.Request) (req ChargeRequest, orderID, key string, err error) {
	key, err = web.IdempotencyKey(r, MaxKeyLen)
	if err == nil && key == "" {
		err = web.Errorf(http.StatusBadRequest, web.HeaderIdempotencyKey, "required: a charge is only safe to retry with an idempotency key (the saga sends {orderId}:charge)")
	}
	if err != nil {
		return req, "", "", err
	}
	req, err = web.DecodeBody(r, MaxBodyBytes, decodeCharge)
	return req, req.OrderID, key, err
}

// decline returns the decline code a test token produces, or "".
func decline(token string) string {
	switch token {
	case TokenDeclined:
		return ErrCodeCardDeclined
	case TokenInsufficientFunds:
		return ErrCodeInsufficientFunds
	}
	return ""
}
