package verify

import (
	"strings"
	"testing"
	"time"
)

var c0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// line is an acked order of two SKU-00001 at 19.99: what the client asked.
func acked(expect string) LedgerLine {
	return LedgerLine{OrderID: "o", Expect: expect, Code: 202, Outcome: OutcomeAcked,
		TotalCents: 3998, Items: []LedgerItem{{SKU: "SKU-00001", Qty: 2, PriceCents: 1999}}}
}

func allChannels() *Contact { return &Contact{Email: true, Push: true, SMS: true} }

func received(tpl string) map[string]map[string]int {
	return map[string]map[string]int{tpl: {"email": 1, "push": 1, "sms": 1}}
}

// history of a saga that ran reserve and charge and then stopped at step.
func history(steps ...StepRun) *History {
	return &History{Start: c0, Steps: steps, Closed: "Completed"}
}

func okFacts() Facts {
	return Facts{
		Order:        &Order{ID: "o", UserID: "u-1", Status: "in_transit", TotalCents: 3998},
		View:         &View{Status: "in_transit"},
		Workflows:    []Workflow{{RunID: "r1", Status: "Running"}},
		History:      &History{Start: c0, Steps: []StepRun{{Activity: "Reserve", Attempts: 1}, {Activity: "Charge", Attempts: 1}, {Activity: "Ship", Attempts: 1}}},
		Reservations: []Reservation{{ID: "res", Items: map[string]int{"SKU-00001": 2}}},
		Charges:      []Charge{{ID: "ch", Captured: true, AmountCents: 3998}},
		Shipments:    []Shipment{{ID: "sh"}},
		Received:     received("order-shipped"),
		Contact:      allChannels(),
	}
}

// failedFacts is an order that failed at step (business or not) and was
// undone: stock released at +1s, the charge refunded at +1.5s.
func failedFacts(step StepRun) Facts {
	return Facts{
		Order:        &Order{ID: "o", UserID: "u-1", Status: "failed", FailureReason: step.Message},
		View:         &View{Status: "failed", FailureReason: step.Message},
		Workflows:    []Workflow{{RunID: "r1", Status: "Completed"}},
		History:      history(StepRun{Activity: "Reserve", Attempts: 1, End: c0}, step),
		Reservations: []Reservation{{ID: "res", Released: true, ReleasedAt: step.End.Add(time.Second), Items: map[string]int{"SKU-00001": 2}}},
		Charges:      []Charge{{ID: "ch", Captured: true, AmountCents: 3998, RefundedCents: 3998, Refunds: 1, LastRefundAt: step.End.Add(1500 * time.Millisecond)}},
		Received:     received("order-failed"),
		Contact:      allChannels(),
	}
}

var (
	shipRefused  = StepRun{Activity: "Ship", Start: c0, End: c0.Add(10 * time.Millisecond), Attempts: 1, Failed: true, Business: true, Message: "undeliverable"}
	chargeRefuse = StepRun{Activity: "Charge", Start: c0, End: c0.Add(10 * time.Millisecond), Attempts: 1, Failed: true, Business: true, Message: "card_declined"}
	// payments down for the whole 10 s budget, 5 attempts
	chargeOutage = StepRun{Activity: "Charge", Start: c0, End: c0.Add(10 * time.Second), Attempts: 5, Failed: true, Message: "payments: connection refused"}
)

func declinedFacts() Facts {
	f := failedFacts(chargeRefuse)
	f.Charges = []Charge{{ID: "ch", Declined: true, AmountCents: 3998}}
	return f
}

var budget10 = Env{OutageBudget: 10 * time.Second, Faults: []Window{{Name: "payments-outage", Target: "payments", Unreachable: true, Start: c0.Add(-2 * time.Second), End: c0.Add(20 * time.Second)}}}

func TestClassify(t *testing.T) {
	tests := []struct {
		name       string
		line       LedgerLine
		facts      func() Facts
		env        Env
		want       string
		wantReason string
	}{
		{"ok/complete in transit", acked(ExpectComplete), okFacts, Env{}, ClassOK, ""},
		{"ok/delivered, both notifications", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Order.Status, f.View.Status, f.Shipments[0].Delivered = "delivered", "delivered", true
			f.Received["delivery-confirmed"] = map[string]int{"email": 1, "push": 1, "sms": 1}
			return f
		}, Env{}, ClassOK, ""},
		{"ok/no phone: sms not expected", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Contact.SMS = false
			delete(f.Received["order-shipped"], "sms")
			return f
		}, Env{}, ClassOK, ""},
		{"ok/declined compensated", acked(ExpectDeclined), declinedFacts, Env{}, ClassCompensated, ""},
		{"ok/undeliverable compensated with refund", acked(ExpectUndeliverable), func() Facts { return failedFacts(shipRefused) }, Env{}, ClassCompensated, ""},
		{"ok/out of stock: nothing to undo", acked(ExpectOutOfStock), func() Facts {
			f := failedFacts(StepRun{Activity: "Reserve", Attempts: 1, Failed: true, Business: true, Message: "out_of_stock"})
			f.History.Steps = f.History.Steps[1:]
			f.Reservations, f.Charges = nil, nil
			return f
		}, Env{}, ClassCompensated, ""},
		{"ok/outage over the whole budget is an allowed failure", acked(ExpectComplete), func() Facts { return failedFacts(chargeOutage) }, budget10, ClassCompensated, ""},
		{"ok/timeout on client but order exists", LedgerLine{OrderID: "o", Expect: ExpectComplete, Outcome: OutcomeUnknown, TotalCents: 3998,
			Items: []LedgerItem{{SKU: "SKU-00001", Qty: 2, PriceCents: 1999}}}, okFacts, Env{}, ClassUnacked, ""},
		{"ok/rejected and absent", LedgerLine{Expect: ExpectComplete, Code: 400, Outcome: OutcomeRejected}, func() Facts { return Facts{} }, Env{}, ClassRejected, ""},

		{"err/lost: acked, no order", acked(ExpectComplete), func() Facts { return Facts{} }, Env{}, ClassLost, "unknown to the Orders service"},
		{"err/lost: no workflow, nothing done", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Workflows, f.History, f.Reservations, f.Charges, f.Shipments = nil, nil, nil, nil, nil
			f.Order.Status, f.View.Status = "pending", "pending"
			return f
		}, Env{}, ClassLost, "no workflow order-o in Temporal; nothing reserved, charged or shipped"},
		{"err/lost: stuck before shipment", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Order.Status, f.View.Status, f.History.Closed = "charging_payment", "charging_payment", ""
			f.Charges, f.Shipments = nil, nil
			return f
		}, Env{}, ClassLost, "no terminal state"},
		{"err/duplicated: two captures", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Charges = append(f.Charges, Charge{ID: "ch2", Captured: true, AmountCents: 3998})
			return f
		}, Env{}, ClassDuplicated, "2 captured charges"},
		{"err/duplicated: two workflows", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Workflows = append(f.Workflows, Workflow{RunID: "r2"})
			return f
		}, Env{}, ClassDuplicated, "2 workflow runs"},
		{"err/duplicated: two shipments", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Shipments = append(f.Shipments, Shipment{ID: "sh2"})
			return f
		}, Env{}, ClassDuplicated, "2 shipments"},
		{"err/duplicated: a notification twice, the order still holds its stock", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Received["order-shipped"]["email"] = 2
			return f
		}, Env{}, ClassDuplicated, "order-shipped on email received 2 times"},
		{"err/duplicated: channel received twice", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Received["order-shipped"]["sms"] = 2
			return f
		}, Env{}, ClassDuplicated, "order-shipped on sms received 2 times"},
		{"err/inconsistent: leaked reservation", acked(ExpectDeclined), func() Facts {
			f := declinedFacts()
			f.Reservations[0].Released = false
			return f
		}, Env{}, ClassInconsistent, "stock held by reservation res"},
		{"err/inconsistent: charged and failed without refund", acked(ExpectUndeliverable), func() Facts {
			f := failedFacts(shipRefused)
			f.Charges[0].RefundedCents, f.Charges[0].Refunds = 0, 0
			return f
		}, Env{}, ClassInconsistent, "charge ch captured (3998 cents), not refunded"},
		{"err/inconsistent: over-refund", acked(ExpectUndeliverable), func() Facts {
			f := failedFacts(shipRefused)
			f.Charges[0].RefundedCents, f.Charges[0].Refunds = 7996, 2
			return f
		}, Env{}, ClassInconsistent, "over-refunded: 7996 cents refunded of 3998"},
		{"err/inconsistent: partial refund", acked(ExpectUndeliverable), func() Facts {
			f := failedFacts(shipRefused)
			f.Charges[0].RefundedCents = 1999
			return f
		}, Env{}, ClassInconsistent, "refunded only 1999 of 3998"},
		{"err/inconsistent: refund without failure", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Charges[0].Refunds, f.Charges[0].RefundedCents = 1, 3998
			return f
		}, Env{}, ClassInconsistent, "half done"},
		{"err/inconsistent: charged another amount than ordered", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Charges[0].AmountCents, f.Order.TotalCents = 1999, 1999 // the platform agrees with itself
			return f
		}, Env{}, ClassInconsistent, "charged 1999 cents, the client ordered 3998"},
		{"err/inconsistent: a charge of nothing is a charge, not a refund", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Charges[0].AmountCents = 0
			return f
		}, Env{}, ClassInconsistent, "charged 0 cents, the client ordered 3998"},
		{"err/inconsistent: reserved other items than ordered", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Reservations[0].Items = map[string]int{"SKU-00001": 1}
			return f
		}, Env{}, ClassInconsistent, "reserved SKU-00001 x1, the client ordered SKU-00001 x2"},
		{"err/inconsistent: expected complete, failed for a business reason", acked(ExpectComplete), declinedFacts, budget10, ClassInconsistent, "Charge refused it: card_declined"},
		{"err/inconsistent: budget cut short, whatever the reason says", acked(ExpectComplete), func() Facts {
			s := chargeOutage
			s.End = c0.Add(5 * time.Second)
			f := failedFacts(s)
			f.Order.FailureReason = "payments unavailable for 10m0s"
			return f
		}, budget10, ClassInconsistent, "after 5s and 5 attempts, the outage budget is 10s"},
		{"err/inconsistent: failed as unavailable, the harness never broke payments", acked(ExpectComplete), func() Facts { return failedFacts(chargeOutage) },
			Env{OutageBudget: 10 * time.Second}, ClassInconsistent, "unreachable for 0s of the 10s it waited"},
		{"err/inconsistent: failed as unavailable, payments down only part of the wait", acked(ExpectComplete), func() Facts { return failedFacts(chargeOutage) },
			Env{OutageBudget: 10 * time.Second, Faults: []Window{{Target: "payments", Unreachable: true, Start: c0, End: c0.Add(4 * time.Second)}}}, ClassInconsistent, "unreachable for 4s"},
		{"err/inconsistent: a latency is not an outage", acked(ExpectComplete), func() Facts { return failedFacts(chargeOutage) },
			Env{OutageBudget: 10 * time.Second, Faults: []Window{{Target: "payments", Start: c0, End: c0.Add(20 * time.Second)}}}, ClassInconsistent, "unreachable for 0s"},
		{"err/inconsistent: cancelled though the client never cancelled", acked(ExpectDeclined), func() Facts {
			f := declinedFacts()
			f.Order.Status, f.View.Status = "cancelled", "cancelled"
			f.Received = received("order-cancelled")
			return f
		}, Env{}, ClassInconsistent, "client never cancelled"},
		{"err/inconsistent: expected declined, failed elsewhere", acked(ExpectDeclined), func() Facts { return failedFacts(shipRefused) }, Env{}, ClassInconsistent, "expected declined, but the saga failed at Ship"},
		{"ok/expected declined, payments down over the whole budget before it could decline", acked(ExpectDeclined), func() Facts { return failedFacts(chargeOutage) }, budget10, ClassCompensated, ""},
		{"ok/expected undeliverable, payments down over the whole budget before shipping", acked(ExpectUndeliverable), func() Facts { return failedFacts(chargeOutage) }, budget10, ClassCompensated, ""},
		{"err/inconsistent: expected out of stock, payments down: reserve had to refuse it first", acked(ExpectOutOfStock), func() Facts { return failedFacts(chargeOutage) }, budget10, ClassInconsistent, "expected out_of_stock, but the saga failed at Charge"},
		{"err/inconsistent: expected declined, failed at charge as unavailable, payments never down", acked(ExpectDeclined), func() Facts { return failedFacts(chargeOutage) },
			Env{OutageBudget: 10 * time.Second}, ClassInconsistent, "expected declined, but the saga failed at Charge"},
		{"err/inconsistent: expected declined, budget cut short", acked(ExpectDeclined), func() Facts {
			s := chargeOutage
			s.End = c0.Add(5 * time.Second)
			return failedFacts(s)
		}, budget10, ClassInconsistent, "expected declined, but the saga failed at Charge"},
		{"err/inconsistent: expected declined, succeeded", acked(ExpectDeclined), okFacts, Env{}, ClassInconsistent, "expected declined"},
		{"err/inconsistent: failure not received", acked(ExpectOutOfStock), func() Facts {
			f := failedFacts(StepRun{Activity: "Reserve", Attempts: 1, Failed: true, Business: true, Message: "out_of_stock"})
			f.Reservations, f.Charges, f.Received = nil, nil, nil
			f.Deliveries = []Delivery{{Template: "order-failed", Channel: "email", Outcome: "failed"}}
			return f
		}, Env{}, ClassInconsistent, "order-failed never received on email (failed at Notifications), push (no delivery"},
		{"err/inconsistent: a dead send is not a notification", acked(ExpectComplete), func() Facts {
			f := okFacts()
			delete(f.Received["order-shipped"], "push")
			f.Deliveries = []Delivery{{Template: "order-shipped", Channel: "push", Outcome: "failed"}}
			return f
		}, Env{}, ClassInconsistent, "order-shipped never received on push"},
		{"err/inconsistent: shipment not cancelled", acked(ExpectUndeliverable), func() Facts {
			f := failedFacts(shipRefused)
			f.Shipments = []Shipment{{ID: "sh"}}
			return f
		}, Env{}, ClassInconsistent, "shipment sh live"},
		{"err/inconsistent: projection shows compensating for an undone order", acked(ExpectDeclined), func() Facts {
			f := declinedFacts()
			f.Order.Status, f.View.Status = "compensating", "compensating"
			return f
		}, Env{}, ClassInconsistent, "the Orders projection shows compensating; the stores say undone"},
		{"err/inconsistent: view shows delivered for a refunded order", acked(ExpectUndeliverable), func() Facts {
			f := failedFacts(shipRefused)
			f.Order.Status, f.View.Status = "delivered", "delivered"
			return f
		}, Env{}, ClassInconsistent, "shows delivered"},
		{"err/inconsistent: rejected but exists", LedgerLine{OrderID: "o", Code: 400, Outcome: OutcomeRejected}, okFacts, Env{}, ClassInconsistent, "rejected"},

		{"ok/rest: succeeded, judged without workflow or notifications", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Workflows, f.History, f.Received = nil, nil, nil
			return f
		}, Env{Platform: PlatformRest}, ClassOK, ""},
		{"err/rest: half done, reserved and never charged", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Workflows, f.History, f.Received, f.Charges, f.Shipments = nil, nil, nil, nil, nil
			f.Order.Status, f.View.Status = "pending", "pending"
			return f
		}, Env{Platform: PlatformRest}, ClassInconsistent, "stock held by reservation res"},
		{"err/rest: lost, accepted and nothing done", acked(ExpectComplete), func() Facts {
			f := okFacts()
			f.Workflows, f.History, f.Received, f.Reservations, f.Charges, f.Shipments = nil, nil, nil, nil, nil, nil
			f.Order.Status, f.View.Status = "pending", "pending"
			return f
		}, Env{Platform: PlatformRest}, ClassLost, "nothing will"},
		{"err/rest: failed and nothing undone", acked(ExpectDeclined), func() Facts {
			f := okFacts()
			f.Workflows, f.History, f.Received, f.Shipments = nil, nil, nil, nil
			f.Charges = []Charge{{ID: "ch", Declined: true}}
			f.Order.Status, f.View.Status = "failed", "failed"
			return f
		}, Env{Platform: PlatformRest}, ClassInconsistent, "stock held"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Classify(tt.line, tt.facts(), tt.env)
			if strings.Contains(tt.name, "holds its stock") && !got.Holds {
				t.Errorf("a shipped order does not hold its stock: %+v", got)
			}
			if got.Class != tt.want {
				t.Fatalf("class = %s, want %s (reasons %v)", got.Class, tt.want, got.Reasons)
			}
			if tt.wantReason != "" && !strings.Contains(strings.Join(got.Reasons, "; "), tt.wantReason) {
				t.Fatalf("reasons %v lack %q", got.Reasons, tt.wantReason)
			}
		})
	}
}

// The compensation is timed from the stores' and Temporal's clocks: the
// failed step's end in the history to the last undo row, whatever the
// saga says about itself.
func TestCompensationTime(t *testing.T) {
	for _, tc := range []struct {
		name         string
		facts        func() Facts
		want         time.Duration
		compensated  bool
		unmeasuredIs string
	}{
		{"ok/last undo is the refund", func() Facts { return failedFacts(shipRefused) }, 1500 * time.Millisecond, true, ""},
		{"ok/a 40 s wait before compensating shows", func() Facts {
			f := failedFacts(shipRefused)
			f.Reservations[0].ReleasedAt = shipRefused.End.Add(41 * time.Second)
			return f
		}, 41 * time.Second, true, ""},
		{"ok/nothing to undo is not a compensation", func() Facts {
			f := failedFacts(StepRun{Activity: "Reserve", Attempts: 1, Failed: true, Business: true, Message: "out_of_stock"})
			f.Reservations, f.Charges = nil, nil
			return f
		}, 0, false, ""},
		{"ok/undone before a replayed failure: bounded from the step's start", func() Facts {
			// The worker ran Charge, failed it and compensated; its workflow
			// task was lost and the replay recorded the failure 48 s later.
			step := chargeOutage
			step.End = step.Start.Add(60 * time.Second)
			f := failedFacts(step)
			f.Reservations[0].ReleasedAt = step.Start.Add(11 * time.Second)
			f.Charges[0].LastRefundAt = step.Start.Add(12 * time.Second)
			return f
		}, 12 * time.Second, true, ""},
		{"ok/undone before a replayed step began: bounded from the workflow's start", func() Facts {
			// The whole workflow task was replayed: every marker, the
			// steps before this one too, carries the replay's time.
			step := shipRefused
			step.Start, step.End = c0.Add(70*time.Second), c0.Add(71*time.Second)
			f := failedFacts(step)
			f.History.Start = c0.Add(-2 * time.Second)
			f.Reservations[0].ReleasedAt = c0.Add(3 * time.Second)
			f.Charges[0].LastRefundAt = c0.Add(4 * time.Second)
			return f
		}, 6 * time.Second, true, ""},
		{"err/undone before the workflow started: unmeasured, never negative", func() Facts {
			f := failedFacts(shipRefused)
			f.History.Start = shipRefused.Start
			f.Reservations[0].ReleasedAt = shipRefused.Start.Add(-time.Second)
			f.Charges[0].LastRefundAt = shipRefused.Start.Add(-time.Second)
			return f
		}, 0, false, "before its workflow started"},
		{"err/no history: unmeasured", func() Facts {
			f := failedFacts(shipRefused)
			f.History = nil
			return f
		}, 0, false, "no failed step"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := acked(ExpectUndeliverable)
			if strings.Contains(tc.name, "nothing to undo") {
				line = acked(ExpectOutOfStock)
			}
			v := Classify(line, tc.facts(), Env{})
			if v.Compensated != tc.compensated || v.CompensationTime != tc.want || !strings.Contains(v.Unmeasured, tc.unmeasuredIs) {
				t.Fatalf("got compensated %v in %s (unmeasured %q), want %v in %s (%q); %+v", v.Compensated, v.CompensationTime, v.Unmeasured, tc.compensated, tc.want, tc.unmeasuredIs, v)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	w := []Window{
		{Target: "payments", Unreachable: true, Start: c0, End: c0.Add(10 * time.Second)},
		{Target: "payments", Unreachable: true, Start: c0.Add(5 * time.Second), End: c0.Add(15 * time.Second)}, // overlaps: counted once
		{Target: "payments", Start: c0.Add(20 * time.Second), End: c0.Add(30 * time.Second)},                   // latency: reachable
		{Target: "inventory", Unreachable: true, Start: c0, End: c0.Add(time.Hour)},
	}
	for _, tc := range []struct {
		from, to time.Duration
		want     time.Duration
	}{
		{0, 30 * time.Second, 15 * time.Second},
		{12 * time.Second, 30 * time.Second, 3 * time.Second},
		{-time.Minute, 0, 0},
	} {
		if got := Unreachable(w, "payments", c0.Add(tc.from), c0.Add(tc.to)); got != tc.want {
			t.Errorf("Unreachable(%s..%s) = %s, want %s", tc.from, tc.to, got, tc.want)
		}
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
