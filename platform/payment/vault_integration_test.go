//go:build integration

package payment_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/stampede-dev/stampede/platform/payment"
	"github.com/stampede-dev/stampede/platform/vault"
)

func refBody(order string, cents int64, ref string) string {
	return fmt.Sprintf(`{"orderId":%q,"amountCents":%d,"currency":"USD","paymentRef":%q}`, order, cents, ref)
}

// A charge by vault reference uses the token the vault holds (a declining
// one declines), takes it out in the charge's transaction, replays without
// it, and refuses a reference the vault does not hold with a 400 naming
// paymentRef, charging nothing.
func TestChargeByVaultReference(t *testing.T) {
	e := newEnv(t, 0)
	ctx := context.Background()
	if err := vault.Ensure(ctx, e.db); err != nil {
		t.Fatal(err)
	}
	put := func(token string) string {
		ref, err := vault.Put(ctx, e.db, token)
		if err != nil {
			t.Fatal(err)
		}
		return ref
	}
	held := func(ref string) int {
		return e.count(t, "SELECT count(*) FROM vault.payment_tokens WHERE ref = $1", ref)
	}

	order := uuid.NewString()
	ref := put("tok_visa")
	code, first := e.do(t, "POST", "/v1/charges", order+":charge", refBody(order, 900, ref))
	if c := decode[payment.ChargeResponse](t, first); code != 201 || c.Status != payment.StatusCaptured {
		t.Fatalf("charge by reference = %d %s, want 201 captured", code, first)
	}
	if held(ref) != 0 {
		t.Error("the vault still holds the token after the charge")
	}
	if code, again := e.do(t, "POST", "/v1/charges", order+":charge", refBody(order, 900, ref)); code != 201 || !bytes.Equal(again, first) {
		t.Fatalf("replay without the token = %d %s, want the first answer", code, again)
	}

	declined := uuid.NewString()
	dref := put(payment.TokenDeclined)
	if code, b := e.do(t, "POST", "/v1/charges", declined+":charge", refBody(declined, 900, dref)); code != 402 || !bytes.Contains(b, []byte(payment.ErrCodeCardDeclined)) {
		t.Fatalf("charge by a declining token's reference = %d %s, want 402 %s", code, b, payment.ErrCodeCardDeclined)
	}

	for name, r := range map[string]string{"used": ref, "never issued": vault.RefPrefix + "00000000000000000000000000000000"} {
		other := uuid.NewString()
		code, b := e.do(t, "POST", "/v1/charges", other+":charge", refBody(other, 900, r))
		if code != 400 || !bytes.Contains(b, []byte(`"field":"paymentRef"`)) {
			t.Errorf("charge by a %s reference = %d %s, want 400 naming paymentRef", name, code, b)
		}
		if n := e.count(t, "SELECT count(*) FROM charges WHERE order_id = $1", other); n != 0 {
			t.Errorf("charge by a %s reference wrote %d charges", name, n)
		}
	}
}
