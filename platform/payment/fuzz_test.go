package payment

import (
	"testing"

	"github.com/stampede-dev/stampede/platform/web/webtest"
)

// FuzzDecodeCharge: any body is a ChargeRequest within the contract's
// bounds, or a 400 naming a field. Never a panic.
func FuzzDecodeCharge(f *testing.F) {
	f.Add([]byte(`{"orderId":"o1","amountCents":4498,"currency":"USD","token":"tok_visa"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeCharge(body)
		if err != nil {
			webtest.Refusal(t, err)
			return
		}
		if req.OrderID == "" || req.Token == "" || req.AmountCents < 0 || req.AmountCents > MaxAmountCents || len(req.Currency) != 3 {
			t.Fatalf("accepted %+v", req)
		}
	})
}
