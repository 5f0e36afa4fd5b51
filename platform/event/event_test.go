package event

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func validOrder() OrderCreated {
	return OrderCreated{
		OrderID: "o-1", UserID: "u-1", Currency: "USD",
		Items:           []LineItem{{SKU: "SKU-00001", Qty: 2, PriceCents: 1999}},
		TotalCents:      3998,
		ShippingAddress: Address{Name: "Ada", Line1: "1 Main St", City: "Springfield", PostalCode: "12345", Country: "US"},
		Payment:         Payment{Method: "card", Token: "tok_visa"},
	}
}

func TestRoundTrip(t *testing.T) {
	env, err := New(validOrder(), "order-service", "o-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	got, p, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got.ID != env.ID || got.Type != TypeOrderCreated || got.CorrelationID != "o-1" {
		t.Fatalf("envelope = %+v, want id %s type %s", got, env.ID, TypeOrderCreated)
	}
	oc, ok := p.(*OrderCreated)
	if !ok {
		t.Fatalf("payload is %T, want *OrderCreated", p)
	}
	if oc.TotalCents != 3998 || oc.Items[0].SKU != "SKU-00001" {
		t.Fatalf("payload = %+v", oc)
	}
}

func TestNewRefusesInvalidPayload(t *testing.T) {
	o := validOrder()
	o.TotalCents = 1
	if _, err := New(o, "order-service", "", time.Now()); err == nil {
		t.Fatal("New accepted a total that is not the sum of the lines")
	}
}

func TestParseErrors(t *testing.T) {
	good, _ := New(validOrder(), "order-service", "o-1", time.Now())
	mutate := func(f func(m map[string]any)) []byte {
		b, _ := json.Marshal(good)
		var m map[string]any
		json.Unmarshal(b, &m)
		f(m)
		out, _ := json.Marshal(m)
		return out
	}
	tests := []struct {
		name      string
		in        []byte
		wantField string
	}{
		{"err/not json", []byte("{nope"), "envelope"},
		{"err/correlation id not safe", mutate(func(m map[string]any) { m["correlationId"] = "a b" }), "correlationId"},
		{"err/correlation id too long", mutate(func(m map[string]any) { m["correlationId"] = strings.Repeat("c", 129) }), "correlationId"},
		{"err/source with NUL", mutate(func(m map[string]any) { m["source"] = "x\x00" }), "source"},
		{"err/type too long", mutate(func(m map[string]any) { m["type"] = strings.Repeat("t", 129) }), "type"},
		{"err/user id too long", mutate(func(m map[string]any) { m["data"].(map[string]any)["userId"] = strings.Repeat("u", 129) }), "data.userId"},
		{"err/user id with NUL", mutate(func(m map[string]any) { m["data"].(map[string]any)["userId"] = "u\x00" }), "data.userId"},
		{"err/token not text", mutate(func(m map[string]any) {
			m["data"].(map[string]any)["payment"] = map[string]any{"method": "card", "token": "t\n"}
		}), "data.payment.token"},
		{"err/address field too long", mutate(func(m map[string]any) {
			m["data"].(map[string]any)["shippingAddress"].(map[string]any)["city"] = strings.Repeat("c", 201)
		}), "data.shippingAddress.city"},
		{"err/too many lines", mutate(func(m map[string]any) {
			var lines []map[string]any
			for range 101 {
				lines = append(lines, map[string]any{"sku": "A", "qty": 1, "priceCents": 1})
			}
			m["data"].(map[string]any)["items"] = lines
		}), "data.items"},
		{"err/price over the line bound", mutate(func(m map[string]any) {
			m["data"].(map[string]any)["items"] = []map[string]any{{"sku": "A", "qty": 1, "priceCents": 10_000_000_001}}
		}), "data.items[0].priceCents"},
		{"err/sku too long", mutate(func(m map[string]any) {
			m["data"].(map[string]any)["items"] = []map[string]any{{"sku": strings.Repeat("s", 65), "qty": 1, "priceCents": 1}}
		}), "data.items[0].sku"},
		{"err/no id", mutate(func(m map[string]any) { delete(m, "id") }), "id"},
		{"err/id not uuid", mutate(func(m map[string]any) { m["id"] = "abc" }), "id"},
		{"err/no type", mutate(func(m map[string]any) { delete(m, "type") }), "type"},
		{"err/unknown type", mutate(func(m map[string]any) { m["type"] = "order.exploded" }), "type"},
		{"err/no version", mutate(func(m map[string]any) { m["version"] = 0 }), "version"},
		{"err/no occurredAt", mutate(func(m map[string]any) { delete(m, "occurredAt") }), "occurredAt"},
		{"err/no source", mutate(func(m map[string]any) { m["source"] = "" }), "source"},
		{"err/null data", mutate(func(m map[string]any) { m["data"] = nil }), "data"},
		{"err/data wrong shape", mutate(func(m map[string]any) { m["data"] = []int{1} }), "data"},
		{"err/payload missing user", mutate(func(m map[string]any) { delete(m["data"].(map[string]any), "userId") }), "data.userId"},
		{"err/payload bad qty", mutate(func(m map[string]any) {
			m["data"].(map[string]any)["items"] = []map[string]any{{"sku": "A", "qty": 0, "priceCents": 1}}
		}), "data.items[0].qty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse(tt.in)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Parse() error = %v, want a *DecodeError", err)
			}
			if de.Field != tt.wantField {
				t.Fatalf("field = %q, want %q (err %v)", de.Field, tt.wantField, err)
			}
			if !strings.HasPrefix(err.Error(), "event: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestDecodeDataWrongType(t *testing.T) {
	env, _ := New(validOrder(), "order-service", "", time.Now())
	if _, err := DecodeData[PaymentCompleted](env); err == nil {
		t.Fatal("DecodeData accepted an order.created as payment.completed")
	}
}

func TestValidID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"o-good", true},
		{"", false},
		{strings.Repeat("a", 129), false},
		{"bad id", false},
		{"nul\x00", false},
		{"\xff", false},
		{"../etc", false},
	} {
		if got := ValidID(tc.id); got != tc.want {
			t.Errorf("ValidID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}
