package verify

import (
	"strings"
	"testing"
	"time"
)

func okFacts() Facts {
	return Facts{
		Order:        &Order{ID: "o", Status: "in_transit"},
		Workflows:    []Workflow{{RunID: "r1", Status: "Running", Saga: &Saga{Status: "in_transit"}}},
		Reservations: []Reservation{{ID: "res", Items: map[string]int{"SKU-00001": 2}}},
		Charges:      []Charge{{ID: "ch", Captured: true, AmountCents: 3998}},
		Shipments:    []Shipment{{ID: "sh"}},
		Deliveries:   []Delivery{{Template: "order-shipped", Channel: "email", Sent: 1, Outcome: "delivered"}},
	}
}

func failedFacts(reason string) Facts {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	return Facts{
		Order: &Order{ID: "o", Status: "failed", FailureReason: reason},
		Workflows: []Workflow{{RunID: "r1", Status: "Completed", Saga: &Saga{Status: "failed", Reason: reason,
			FailedAt: t0, CompensatedAt: t0.Add(1500 * time.Millisecond), Compensations: []string{"refund", "release"}}}},
		Reservations: []Reservation{{ID: "res", Released: true}},
		Charges:      []Charge{{ID: "ch", Captured: true, AmountCents: 3998, RefundedCents: 3998, Refunds: 1}},
		Deliveries:   []Delivery{{Template: "order-failed", Channel: "email", Sent: 1, Outcome: "delivered"}},
	}
}

func acked(expect string) LedgerLine {
	return LedgerLine{OrderID: "o", Expect: expect, Code: 202, Outcome: OutcomeAcked}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name       string
		line       LedgerLine
		facts      func() Facts
		want       string
		wantReason string
	}{
		{"ok/complete in transit", acked(ExpectComplete), okFacts, ClassOK, ""},
		{"ok/delivered", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Order.Status, f.Workflows[0].Saga.Status = "delivered", "delivered"
			return f
		}, ClassOK, ""},
		{"ok/declined compensated", acked(ExpectDeclined), func() Facts {
			f := failedFacts("card declined")
			f.Charges = nil // declined: nothing captured
			return f
		}, ClassCompensated, ""},
		{"ok/undeliverable compensated with refund", acked(ExpectUndeliverable), func() Facts { return failedFacts("undeliverable") }, ClassCompensated, ""},
		{"ok/outage longer than budget is an allowed failure", acked(ExpectComplete), func() Facts {
			return failedFacts("payments unavailable for 10m0s")
		}, ClassCompensated, ""},
		{"ok/timeout on client but order exists", LedgerLine{OrderID: "o", Expect: ExpectComplete, Outcome: OutcomeUnknown}, okFacts, ClassUnacked, ""},
		{"ok/rejected and absent", LedgerLine{Expect: ExpectComplete, Code: 400, Outcome: OutcomeRejected}, func() Facts { return Facts{} }, ClassRejected, ""},
		{"err/lost: acked, no order", acked(ExpectComplete), func() Facts { return Facts{} }, ClassLost, "unknown to the Orders service"},
		{"err/lost: no workflow", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Workflows = nil
			return f
		}, ClassLost, "no workflow"},
		{"err/lost: stuck before shipment", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Order.Status, f.Workflows[0].Saga.Status = "charging_payment", "charging_payment"
			return f
		}, ClassLost, "no terminal state"},
		{"err/duplicated: two captures", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Charges = append(f.Charges, Charge{ID: "ch2", Captured: true, AmountCents: 3998})
			return f
		}, ClassDuplicated, "2 captured charges"},
		{"err/duplicated: two workflows", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Workflows = append(f.Workflows, Workflow{RunID: "r2"})
			return f
		}, ClassDuplicated, "2 workflow runs"},
		{"err/duplicated: two shipments", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Shipments = append(f.Shipments, Shipment{ID: "sh2"})
			return f
		}, ClassDuplicated, "2 shipments"},
		{"err/duplicated: channel notified twice", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Deliveries[0].Sent = 2
			return f
		}, ClassDuplicated, "sent 2 times"},
		{"err/inconsistent: leaked reservation", acked(ExpectDeclined), func() Facts {
			f := failedFacts("card declined")
			f.Charges = nil
			f.Reservations[0].Released = false
			return f
		}, ClassInconsistent, "leaked reservation"},
		{"err/inconsistent: charged and failed without refund", acked(ExpectUndeliverable), func() Facts {
			f := failedFacts("undeliverable")
			f.Charges[0].RefundedCents, f.Charges[0].Refunds = 0, 0
			return f
		}, ClassInconsistent, "without a full refund"},
		{"err/inconsistent: refund without failure", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Charges[0].Refunds, f.Charges[0].RefundedCents = 1, 3998
			return f
		}, ClassInconsistent, "refund without failure"},
		{"err/inconsistent: expected complete, failed for a business reason", acked(ExpectComplete), func() Facts {
			return failedFacts("card declined")
		}, ClassInconsistent, "expected to complete"},
		{"err/inconsistent: expected declined, succeeded", acked(ExpectDeclined), okFacts, ClassInconsistent, "expected declined"},
		{"err/inconsistent: failure not notified", acked(ExpectOutOfStock), func() Facts {
			f := failedFacts("out of stock")
			f.Charges, f.Deliveries = nil, nil
			return f
		}, ClassInconsistent, "not notified"},
		{"err/inconsistent: shipment not cancelled", acked(ExpectUndeliverable), func() Facts {
			f := failedFacts("payments unavailable for 10m0s")
			f.Shipments = []Shipment{{ID: "sh"}}
			return f
		}, ClassInconsistent, "not cancelled"},
		{"err/inconsistent: rejected but exists", LedgerLine{OrderID: "o", Code: 400, Outcome: OutcomeRejected}, okFacts, ClassInconsistent, "rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Classify(tt.line, tt.facts())
			if got.Class != tt.want {
				t.Fatalf("class = %s, want %s (reasons %v)", got.Class, tt.want, got.Reasons)
			}
			if tt.wantReason != "" && !strings.Contains(strings.Join(got.Reasons, "; "), tt.wantReason) {
				t.Fatalf("reasons %v lack %q", got.Reasons, tt.wantReason)
			}
		})
	}
}

func TestCompensationTime(t *testing.T) {
	v := Classify(acked(ExpectUndeliverable), failedFacts("undeliverable"))
	if got, want := v.CompensationTime, 1500*time.Millisecond; got != want {
		t.Fatalf("compensation time = %s, want %s", got, want)
	}
}

// TestPreshipment pins which order statuses the verifier still waits on:
// every status before the shipment decision, none after it.
func TestPreshipment(t *testing.T) {
	for _, tc := range []struct {
		status string
		want   bool
	}{
		{"pending", true},
		{"processing", true},
		{"reserving_inventory", true},
		{"charging_payment", true},
		{"creating_shipment", true},
		{"compensating", true},
		{"shipped", false},
		{"in_transit", false},
		{"delivered", false},
		{"failed", false},
		{"cancelled", false},
		{"", false},
	} {
		if got := Preshipment(tc.status); got != tc.want {
			t.Errorf("Preshipment(%q) = %v, want %v", tc.status, got, tc.want)
		}
	}
}
