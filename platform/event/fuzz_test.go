package event

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// FuzzParse decodes any record value as a consumer does. The property: no
// panic; a refusal is a *DecodeError naming a field (consumers dead-letter
// the record with it); an accepted envelope has what Decode promises.
func FuzzParse(f *testing.F) {
	good, _ := New(OrderCreated{OrderID: "o-1", UserID: "u-1", Currency: "USD",
		Items: []LineItem{{SKU: "A", Qty: 1, PriceCents: 5}}, TotalCents: 5,
		ShippingAddress: Address{Name: "Ada", Line1: "1", City: "c", PostalCode: "1", Country: "US"},
		Payment:         Payment{Method: "card", Token: "tok_visa"}}, "order-service", "cid-1", time.Unix(1, 0))
	b, _ := json.Marshal(good)
	f.Add(b)
	f.Add([]byte("{not json"))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, p, err := Parse(b)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Field == "" || de.Reason == "" {
				t.Fatalf("Parse(%q) = %#v, want a *DecodeError naming a field", b, err)
			}
			return
		}
		if env.ID == "" || env.Type == "" || env.Source == "" || env.Version < 1 || p == nil || p.EventType() != env.Type {
			t.Fatalf("accepted %+v with payload %T", env, p)
		}
		if env.CorrelationID != "" && !ValidCorrelationID(env.CorrelationID) {
			t.Fatalf("accepted correlation id %q", env.CorrelationID)
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted a payload that does not validate: %v", err)
		}
	})
}
