//go:build integration

package payment_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/outbox"
	"github.com/stampede-dev/stampede/platform/payment"
	"github.com/stampede-dev/stampede/platform/postgres"
	"github.com/stampede-dev/stampede/platform/web"
)

// env is the service on its own throwaway schema of the stack's database,
// served in-process.
type env struct {
	db  *pgxpool.Pool
	url string
}

func newEnv(t *testing.T, latency time.Duration) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	schema := "payments_it_" + uuid.NewString()[:8]
	db, err := postgres.Open(ctx, config.PostgresURL(), schema, 40, 5*time.Second)
	if err != nil {
		t.Fatalf("the stack's PostgreSQL is not reachable (run with `make test`): %v", err)
	}
	t.Cleanup(func() {
		db.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		db.Close()
	})
	if err := postgres.Migrate(ctx, db, schema, payment.Migrations()); err != nil {
		t.Fatal(err)
	}
	if err := outbox.EnsureTable(ctx, db); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := &payment.Service{Store: payment.NewStore(db), Log: log, ChargeLatency: latency}
	srv := httptest.NewServer(web.Middleware(svc.Router(), log, nil))
	t.Cleanup(srv.Close)
	return &env{db: db, url: srv.URL}
}

func (e *env) do(t *testing.T, method, path, key, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set(web.HeaderIdempotencyKey, key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (e *env) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := e.db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func (e *env) charges(t *testing.T, order string) payment.ChargeList {
	t.Helper()
	code, b := e.do(t, "GET", "/v1/charges?orderId="+order, "", "")
	if code != 200 {
		t.Fatalf("GET charges = %d %s", code, b)
	}
	return decode[payment.ChargeList](t, b)
}

func chargeBody(order string, cents int64, token string) string {
	return fmt.Sprintf(`{"orderId":%q,"amountCents":%d,"currency":"USD","token":%q}`, order, cents, token)
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func TestChargeCommittedBeforeResponseAndReplayed(t *testing.T) {
	e := newEnv(t, 0)
	order := uuid.NewString()
	body := chargeBody(order, 4498, "tok_visa")
	code, first := e.do(t, "POST", "/v1/charges", order+":charge", body)
	c := decode[payment.ChargeResponse](t, first)
	if code != 201 || c.Status != payment.StatusCaptured || c.ChargeID == "" || c.AmountCents != 4498 || c.Currency != "USD" || c.OrderID != order {
		t.Fatalf("charge = %d %s, want 201 captured 4498 USD", code, first)
	}
	// The 201 was written after the commit: the charge is visible at once.
	if l := e.charges(t, order); len(l.Charges) != 1 || l.Charges[0].ChargeID != c.ChargeID || l.Charges[0].Status != payment.StatusCaptured {
		t.Fatalf("charges after 201 = %+v, want the captured charge", l)
	}
	for i := 0; i < 3; i++ {
		if code, again := e.do(t, "POST", "/v1/charges", order+":charge", body); code != 201 || !bytes.Equal(again, first) {
			t.Fatalf("replay %d = %d %s, want 201 %s", i, code, again, first)
		}
	}
	if n := e.count(t, "SELECT count(*) FROM charges WHERE order_id = $1", order); n != 1 {
		t.Fatalf("charges = %d, want 1", n)
	}
	if n := e.count(t, "SELECT count(*) FROM outbox WHERE topic = 'payments' AND headers->>'event-type' = 'payment.completed'"); n != 1 {
		t.Fatalf("payment.completed rows = %d, want 1", n)
	}
	// Same key, other body: refused, nothing charged.
	code, b := e.do(t, "POST", "/v1/charges", order+":charge", chargeBody(order, 1, "tok_visa"))
	if code != 422 || !bytes.Contains(b, []byte(payment.ErrCodeKeyReused)) {
		t.Fatalf("key reused = %d %s, want 422 %s", code, b, payment.ErrCodeKeyReused)
	}
	if n := e.count(t, "SELECT count(*) FROM charges"); n != 1 {
		t.Fatalf("charges = %d after key reuse, want 1", n)
	}
}

func TestMissingKeyAndBadBodyWriteNothing(t *testing.T) {
	e := newEnv(t, 0)
	code, b := e.do(t, "POST", "/v1/charges", "", chargeBody("o", 1, "tok_visa"))
	if code != 400 || !bytes.Contains(b, []byte(`"field":"Idempotency-Key"`)) {
		t.Fatalf("no key = %d %s, want 400 naming Idempotency-Key", code, b)
	}
	if code, b := e.do(t, "POST", "/v1/charges", "k", `{"orderId":"o","amountCents":-5,"currency":"USD","token":"t"}`); code != 400 || !bytes.Contains(b, []byte(`"field":"amountCents"`)) {
		t.Fatalf("negative amount = %d %s, want 400 naming amountCents", code, b)
	}
	if n := e.count(t, "SELECT (SELECT count(*) FROM charges) + (SELECT count(*) FROM idempotency_keys) + (SELECT count(*) FROM outbox)"); n != 0 {
		t.Fatalf("rows written by bad input = %d, want 0", n)
	}
}

func TestDeclinesAre402AndReplayed(t *testing.T) {
	e := newEnv(t, 0)
	for token, want := range map[string]string{"tok_declined": "card_declined", "tok_insufficient_funds": "insufficient_funds"} {
		order := uuid.NewString()
		body := chargeBody(order, 100, token)
		code, first := e.do(t, "POST", "/v1/charges", order+":charge", body)
		d := decode[payment.Declined](t, first)
		if code != 402 || d.Error != want {
			t.Fatalf("%s = %d %s, want 402 %s", token, code, first, want)
		}
		if code, again := e.do(t, "POST", "/v1/charges", order+":charge", body); code != 402 || !bytes.Equal(again, first) {
			t.Fatalf("%s replay = %d %s, want the first 402 %s", token, code, again, first)
		}
		l := e.charges(t, order)
		if len(l.Charges) != 1 || l.Charges[0].Status != payment.StatusDeclined || l.Charges[0].DeclineCode != want {
			t.Fatalf("%s charges = %+v, want one declined", token, l)
		}
		code, b := e.do(t, "POST", "/v1/charges/"+d.ChargeID+"/refunds", "", "")
		if code != 409 || !bytes.Contains(b, []byte(payment.ErrCodeNotRefundable)) {
			t.Fatalf("refund of a declined charge = %d %s, want 409 not_refundable", code, b)
		}
	}
	if n := e.count(t, "SELECT count(*) FROM outbox"); n != 0 {
		t.Fatalf("outbox rows = %d, want none for declines", n)
	}
}

func TestRefundIsIdempotent(t *testing.T) {
	e := newEnv(t, 0)
	order := uuid.NewString()
	// Charged by another caller than the saga (not under {orderId}:charge):
	// refundable by charge id.
	_, b := e.do(t, "POST", "/v1/charges", "manual-"+order, chargeBody(order, 700, "tok_visa"))
	c := decode[payment.ChargeResponse](t, b)
	code, first := e.do(t, "POST", "/v1/charges/"+c.ChargeID+"/refunds", "", "")
	r := decode[payment.Refund](t, first)
	if code != 201 || r.RefundID == "" || r.ChargeID != c.ChargeID || r.AmountCents != 700 || r.OrderID != order {
		t.Fatalf("refund = %d %s, want 201 full refund", code, first)
	}
	for i := 0; i < 2; i++ {
		code, b := e.do(t, "POST", "/v1/charges/"+c.ChargeID+"/refunds", "", "")
		if got := decode[payment.Refund](t, b); code != 200 || got.RefundID != r.RefundID {
			t.Fatalf("repeat refund = %d %s, want 200 with refund %s", code, b, r.RefundID)
		}
	}
	l := e.charges(t, order)
	if len(l.Charges) != 1 || l.Charges[0].Status != payment.StatusRefunded || len(l.Charges[0].Refunds) != 1 {
		t.Fatalf("charges = %+v, want one refunded charge with one refund", l)
	}
	if n := e.count(t, "SELECT count(*) FROM outbox WHERE headers->>'event-type' = 'payment.refunded' AND headers->>'correlation-id' = $1", order); n != 1 {
		t.Fatalf("payment.refunded rows = %d, want 1", n)
	}
	if code, b := e.do(t, "POST", "/v1/charges/"+uuid.NewString()+"/refunds", "", ""); code != 404 || !bytes.Contains(b, []byte(`"field":"id"`)) {
		t.Fatalf("refund unknown = %d %s, want 404 naming id", code, b)
	}
}

func TestRefundByOrder(t *testing.T) {
	e := newEnv(t, 0)
	// The charge happened but its answer was lost: refund by order id.
	order := uuid.NewString()
	if code, b := e.do(t, "POST", "/v1/charges", order+":charge", chargeBody(order, 300, "tok_visa")); code != 201 {
		t.Fatalf("charge = %d %s", code, b)
	}
	var refundID string
	for i := 0; i < 2; i++ {
		code, b := e.do(t, "POST", "/v1/refunds?orderId="+order, order+":refund", "")
		l := decode[payment.OrderRefunds](t, b)
		if code != 200 || len(l.Refunds) != 1 || l.Refunds[0].AmountCents != 300 || (refundID != "" && l.Refunds[0].RefundID != refundID) {
			t.Fatalf("refund by order %d = %d %s, want the one refund", i, code, b)
		}
		refundID = l.Refunds[0].RefundID
	}
	// The replayed charge still answers its first 201, and moves nothing new.
	if code, _ := e.do(t, "POST", "/v1/charges", order+":charge", chargeBody(order, 300, "tok_visa")); code != 201 {
		t.Fatalf("replay after refund = %d, want the first 201", code)
	}
	if n := e.count(t, "SELECT count(*) FROM charges WHERE order_id = $1", order); n != 1 {
		t.Fatalf("charges = %d, want 1", n)
	}
	// The charge never happened: nothing to refund, and one that arrives
	// after the compensation moves no money.
	ghost := uuid.NewString()
	code, b := e.do(t, "POST", "/v1/refunds?orderId="+ghost, "", "")
	if l := decode[payment.OrderRefunds](t, b); code != 200 || len(l.Refunds) != 0 {
		t.Fatalf("refund of an uncharged order = %d %s, want 200 empty", code, b)
	}
	code, b = e.do(t, "POST", "/v1/charges", ghost+":charge", chargeBody(ghost, 300, "tok_visa"))
	if code != 409 || !bytes.Contains(b, []byte(payment.ErrCodeOrderClosed)) {
		t.Fatalf("charge after refund by order = %d %s, want 409 order_closed", code, b)
	}
	if n := e.count(t, "SELECT count(*) FROM charges WHERE order_id = $1", ghost); n != 0 {
		t.Fatalf("charges of the closed order = %d, want 0", n)
	}
}

func TestConcurrentDuplicatesChargeOnce(t *testing.T) {
	e := newEnv(t, 50*time.Millisecond)
	order := uuid.NewString()
	body := chargeBody(order, 999, "tok_visa")
	var wg sync.WaitGroup
	answers := make(chan string, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, b := e.do(t, "POST", "/v1/charges", order+":charge", body)
			answers <- fmt.Sprintf("%d %s", code, b)
		}()
	}
	wg.Wait()
	close(answers)
	var first string
	for a := range answers {
		if !strings.HasPrefix(a, "201 ") {
			t.Fatalf("answer %s, want 201", a)
		}
		if first == "" {
			first = a
		} else if a != first {
			t.Fatalf("duplicates answered differently:\n%s\n%s", first, a)
		}
	}
	if n := e.count(t, "SELECT count(*) FROM charges WHERE order_id = $1", order); n != 1 {
		t.Fatalf("charges = %d, want 1", n)
	}
}

// A refund by order that races charges in flight never leaves money
// captured: each charge is either refunded or refused as order_closed.
func TestRefundByOrderRacingInFlightCharges(t *testing.T) {
	e := newEnv(t, 200*time.Millisecond)
	orders := make([]string, 10)
	var wg sync.WaitGroup
	for i := range orders {
		orders[i] = uuid.NewString()
		wg.Add(2)
		go func(o string) {
			defer wg.Done()
			code, b := e.do(t, "POST", "/v1/charges", o+":charge", chargeBody(o, 100, "tok_visa"))
			if code != 201 && code != 409 {
				t.Errorf("charge %s = %d %s, want 201 or 409", o, code, b)
			}
		}(orders[i])
		go func(o string, d time.Duration) {
			defer wg.Done()
			time.Sleep(d) // spread the refunds over the charges' window; the assertion does not depend on it
			if code, b := e.do(t, "POST", "/v1/refunds?orderId="+o, o+":refund", ""); code != 200 {
				t.Errorf("refund by order %s = %d %s", o, code, b)
			}
		}(orders[i], time.Duration(i)*40*time.Millisecond)
	}
	wg.Wait()
	if n := e.count(t, "SELECT count(*) FROM charges WHERE order_id = ANY($1) AND status = 'captured'", orders); n != 0 {
		t.Fatalf("%d charges left captured after their order was refunded, want 0", n)
	}
}

// A charge the saga made (under {orderId}:charge) is refunded only by the
// saga's compensation while the order is open: a refund by charge id, or by
// order id without the saga's key, is a 409 saga_owned naming the order and
// moves no money. After the compensation both answer as before.
func TestSagaChargeIsRefundedOnlyByItsCompensation(t *testing.T) {
	e := newEnv(t, 0)
	order := uuid.NewString()
	_, b := e.do(t, "POST", "/v1/charges", order+":charge", chargeBody(order, 800, "tok_visa"))
	c := decode[payment.ChargeResponse](t, b)
	for _, tt := range []struct{ name, path, key, field string }{
		{"by charge id", "/v1/charges/" + c.ChargeID + "/refunds", "", "id"},
		{"by order id without a key", "/v1/refunds?orderId=" + order, "", "orderId"},
		{"by order id with another key", "/v1/refunds?orderId=" + order, "my-refund", "orderId"},
	} {
		code, b := e.do(t, "POST", tt.path, tt.key, "")
		if code != 409 || !bytes.Contains(b, []byte(`"error":"`+payment.ErrCodeSagaOwned+`"`)) ||
			!bytes.Contains(b, []byte(`"field":"`+tt.field+`"`)) || !bytes.Contains(b, []byte(order)) {
			t.Fatalf("refund %s = %d %s, want 409 saga_owned naming %s and the order", tt.name, code, b, tt.field)
		}
	}
	if l := e.charges(t, order); len(l.Charges) != 1 || l.Charges[0].Status != payment.StatusCaptured {
		t.Fatalf("after the refused refunds: %+v, want the charge captured", l)
	}
	code, b := e.do(t, "POST", "/v1/refunds?orderId="+order, order+":refund", "")
	l := decode[payment.OrderRefunds](t, b)
	if code != 200 || len(l.Refunds) != 1 {
		t.Fatalf("the saga's compensation = %d %s, want the refund", code, b)
	}
	code, b = e.do(t, "POST", "/v1/charges/"+c.ChargeID+"/refunds", "", "")
	if got := decode[payment.Refund](t, b); code != 200 || got.RefundID != l.Refunds[0].RefundID {
		t.Fatalf("refund by charge id after the compensation = %d %s, want 200 with its refund", code, b)
	}
}
