//go:build integration

package shipping_test

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
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/outbox"
	"github.com/stampede-dev/stampede/platform/postgres"
	"github.com/stampede-dev/stampede/platform/shipping"
	"github.com/stampede-dev/stampede/platform/web"
)

// env is the service on its own throwaway schema of the stack's database,
// served in-process.
type env struct {
	db  *pgxpool.Pool
	url string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	schema := "shipping_it_" + uuid.NewString()[:8]
	db, err := postgres.Open(ctx, config.PostgresURL(), schema, 20, 5*time.Second)
	if err != nil {
		t.Fatalf("the stack's PostgreSQL is not reachable (run with `make test`): %v", err)
	}
	t.Cleanup(func() {
		db.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		db.Close()
	})
	if err := postgres.Migrate(ctx, db, schema, shipping.Migrations()); err != nil {
		t.Fatal(err)
	}
	if err := outbox.EnsureTable(ctx, db); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(web.Middleware((&shipping.Service{Store: shipping.NewStore(db), Log: log}).Router(), log, nil))
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
		t.Errorf("%s %s: %v", method, path, err) // Errorf: do runs in goroutines too
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

func shipBody(order, country, postal string) string {
	return fmt.Sprintf(`{"orderId":%q,"items":[{"sku":"SKU-00001","qty":2,"warehouseId":"WH-1"}],
		"address":{"name":"Ada","line1":"1 Main St","city":"Springfield","postalCode":%q,"country":%q}}`, order, postal, country)
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func (e *env) create(t *testing.T, order string) shipping.Shipment {
	t.Helper()
	code, b := e.do(t, "POST", "/v1/shipments", order+":ship", shipBody(order, "US", "12345"))
	if code != 201 {
		t.Fatalf("create = %d %s, want 201", code, b)
	}
	return decode[shipping.Shipment](t, b)
}

// createManual books a shipment as a caller other than the saga (not under
// {orderId}:ship): cancellable by shipment id.
func (e *env) createManual(t *testing.T, order string) shipping.Shipment {
	t.Helper()
	code, b := e.do(t, "POST", "/v1/shipments", "manual-"+order, shipBody(order, "US", "12345"))
	if code != 201 {
		t.Fatalf("create = %d %s, want 201", code, b)
	}
	return decode[shipping.Shipment](t, b)
}

func (e *env) events(t *testing.T, typ string) int {
	t.Helper()
	return e.count(t, "SELECT count(*) FROM outbox WHERE topic = 'shipping' AND headers->>'event-type' = $1", typ)
}

func TestCreateReplayChangesNothing(t *testing.T) {
	e := newEnv(t)
	order := uuid.NewString()
	body := shipBody(order, "US", "12345")
	code, first := e.do(t, "POST", "/v1/shipments", order+":ship", body)
	sh := decode[shipping.Shipment](t, first)
	if code != 201 || sh.ShipmentID == "" || !strings.HasPrefix(sh.TrackingNumber, "STP") || sh.Status != shipping.StatusCreated || sh.OrderID != order {
		t.Fatalf("create = %d %s, want 201 with a tracking number", code, first)
	}
	for i := 0; i < 3; i++ {
		if code, again := e.do(t, "POST", "/v1/shipments", order+":ship", body); code != 201 || !bytes.Equal(again, first) {
			t.Fatalf("replay %d = %d %s, want 201 %s", i, code, again, first)
		}
	}
	if code, b := e.do(t, "POST", "/v1/shipments", "", body); code != 201 || decode[shipping.Shipment](t, b).ShipmentID != sh.ShipmentID {
		t.Fatalf("same order without key = %d %s, want shipment %s", code, b, sh.ShipmentID)
	}
	if code, b := e.do(t, "POST", "/v1/shipments", order+":ship", shipBody(order, "DE", "10115")); code != 422 || !bytes.Contains(b, []byte(shipping.ErrCodeKeyReused)) {
		t.Fatalf("key reused = %d %s, want 422 %s", code, b, shipping.ErrCodeKeyReused)
	}
	if code, _ := e.do(t, "POST", "/v1/shipments", "other", shipBody(order, "DE", "10115")); code != 422 {
		t.Fatalf("same order other address = %d, want 422", code)
	}
	if n := e.count(t, "SELECT count(*) FROM shipments"); n != 1 {
		t.Fatalf("shipments = %d, want 1", n)
	}
	if n := e.events(t, "shipment.created"); n != 1 {
		t.Fatalf("shipment.created rows = %d, want 1", n)
	}
	code, b := e.do(t, "GET", "/v1/shipments?orderId="+order, "", "")
	if l := decode[shipping.ShipmentList](t, b); code != 200 || len(l.Shipments) != 1 || l.Shipments[0].TrackingNumber != sh.TrackingNumber {
		t.Fatalf("list = %d %s, want the shipment", code, b)
	}
}

func TestUndeliverableIs422AndReplayed(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ country, postal, field string }{{"XX", "12345", "address.country"}, {"US", "00000", "address.postalCode"}} {
		order := uuid.NewString()
		body := shipBody(order, c.country, c.postal)
		code, first := e.do(t, "POST", "/v1/shipments", order+":ship", body)
		if code != 422 || !bytes.Contains(first, []byte(`"error":"undeliverable"`)) || !bytes.Contains(first, []byte(c.field)) {
			t.Fatalf("%s/%s = %d %s, want 422 undeliverable naming %s", c.country, c.postal, code, first, c.field)
		}
		if code, again := e.do(t, "POST", "/v1/shipments", order+":ship", body); code != 422 || !bytes.Equal(again, first) {
			t.Fatalf("replay = %d %s, want the first 422", code, again)
		}
	}
	if n := e.count(t, "SELECT (SELECT count(*) FROM shipments) + (SELECT count(*) FROM outbox)"); n != 0 {
		t.Fatalf("rows = %d, want no shipment and no event", n)
	}
}

func TestCancelAndDeliverAreIdempotent(t *testing.T) {
	e := newEnv(t)
	a := e.createManual(t, uuid.NewString())
	for i := 0; i < 2; i++ {
		code, b := e.do(t, "POST", "/v1/shipments/"+a.ShipmentID+"/cancel", "", "")
		if got := decode[shipping.Shipment](t, b); code != 200 || got.Status != shipping.StatusCancelled || got.CancelledAt == nil {
			t.Fatalf("cancel %d = %d %s, want 200 cancelled", i, code, b)
		}
	}
	if code, b := e.do(t, "POST", "/v1/shipments/"+a.ShipmentID+"/deliver", "", ""); code != 409 || !bytes.Contains(b, []byte(shipping.ErrCodeCancelled)) {
		t.Fatalf("deliver cancelled = %d %s, want 409 %s", code, b, shipping.ErrCodeCancelled)
	}
	d := e.createManual(t, uuid.NewString())
	for i := 0; i < 2; i++ {
		code, b := e.do(t, "POST", "/v1/shipments/"+d.ShipmentID+"/deliver", "", "")
		if got := decode[shipping.Shipment](t, b); code != 200 || got.Status != shipping.StatusDelivered || got.DeliveredAt == nil {
			t.Fatalf("deliver %d = %d %s, want 200 delivered", i, code, b)
		}
	}
	if code, b := e.do(t, "POST", "/v1/shipments/"+d.ShipmentID+"/cancel", "", ""); code != 409 || !bytes.Contains(b, []byte(shipping.ErrCodeAlreadyDelivered)) {
		t.Fatalf("cancel delivered = %d %s, want 409 %s", code, b, shipping.ErrCodeAlreadyDelivered)
	}
	if code, _ := e.do(t, "POST", "/v1/shipments/cancel?orderId="+d.OrderID, "", ""); code != 409 {
		t.Fatalf("cancel by order of a delivered shipment = %d, want 409", code)
	}
	if n := e.events(t, "shipment.cancelled"); n != 1 {
		t.Fatalf("shipment.cancelled rows = %d, want 1", n)
	}
	if n := e.events(t, "shipment.delivered"); n != 1 {
		t.Fatalf("shipment.delivered rows = %d, want 1", n)
	}
	// Without an X-Correlation-ID the event carries the order id, like every hop of the order.
	if n := e.count(t, "SELECT count(*) FROM outbox WHERE headers->>'event-type' = 'shipment.delivered' AND headers->>'correlation-id' = $1", d.OrderID); n != 1 {
		t.Fatalf("shipment.delivered with the order id as correlation id = %d, want 1", n)
	}
	if code, b := e.do(t, "POST", "/v1/shipments/"+uuid.NewString()+"/deliver", "", ""); code != 404 || !bytes.Contains(b, []byte(`"field":"id"`)) {
		t.Fatalf("deliver unknown = %d %s, want 404 naming id", code, b)
	}
}

func TestCancelByOrder(t *testing.T) {
	e := newEnv(t)
	// The create happened but its answer was lost.
	sh := e.create(t, uuid.NewString())
	for i := 0; i < 2; i++ {
		code, b := e.do(t, "POST", "/v1/shipments/cancel?orderId="+sh.OrderID, sh.OrderID+":cancel-shipment", "")
		l := decode[shipping.ShipmentList](t, b)
		if code != 200 || len(l.Shipments) != 1 || l.Shipments[0].Status != shipping.StatusCancelled {
			t.Fatalf("cancel by order %d = %d %s, want the cancelled shipment", i, code, b)
		}
	}
	// The create never happened: nothing to cancel, and one that arrives later ships nothing.
	ghost := uuid.NewString()
	code, b := e.do(t, "POST", "/v1/shipments/cancel?orderId="+ghost, "", "")
	if l := decode[shipping.ShipmentList](t, b); code != 200 || len(l.Shipments) != 0 {
		t.Fatalf("cancel of an order without shipment = %d %s, want 200 empty", code, b)
	}
	code, b = e.do(t, "POST", "/v1/shipments", ghost+":ship", shipBody(ghost, "US", "12345"))
	if code != 409 || !bytes.Contains(b, []byte(shipping.ErrCodeOrderClosed)) {
		t.Fatalf("create after cancel by order = %d %s, want 409 order_closed", code, b)
	}
	if n := e.count(t, "SELECT count(*) FROM shipments WHERE order_id = $1", ghost); n != 0 {
		t.Fatalf("shipments of the closed order = %d, want 0", n)
	}
	if n := e.events(t, "shipment.cancelled"); n != 1 {
		t.Fatalf("shipment.cancelled rows = %d, want 1", n)
	}
}

func TestBadInputWritesNothing(t *testing.T) {
	e := newEnv(t)
	for body, field := range map[string]string{
		`{"orderId":"o","items":[{"sku":"A","qty":1}],"address":{"name":"A","line1":"x","city":"c","country":"US"}}`:                   "address.postalCode",
		`{"orderId":"o","items":[{"sku":"A","qty":-1}],"address":{"name":"A","line1":"x","city":"c","postalCode":"1","country":"US"}}`: "items[0].qty",
	} {
		if code, b := e.do(t, "POST", "/v1/shipments", "", body); code != 400 || !bytes.Contains(b, []byte(`"field":"`+field+`"`)) {
			t.Fatalf("%s = %d %s, want 400 naming %s", body, code, b, field)
		}
	}
	if n := e.count(t, "SELECT (SELECT count(*) FROM shipments) + (SELECT count(*) FROM idempotency_keys)"); n != 0 {
		t.Fatalf("rows written by bad input = %d, want 0", n)
	}
}

// A cancel by order racing the create never leaves a live shipment: the
// create either lands first and is cancelled, or is refused as order_closed.
func TestCancelByOrderRacingCreate(t *testing.T) {
	e := newEnv(t)
	orders := make([]string, 20)
	done := make(chan struct{}, 2*len(orders))
	for i := range orders {
		orders[i] = uuid.NewString()
		go func(o string) {
			defer func() { done <- struct{}{} }()
			if code, b := e.do(t, "POST", "/v1/shipments", o+":ship", shipBody(o, "US", "12345")); code != 201 && code != 409 {
				t.Errorf("create %s = %d %s, want 201 or 409", o, code, b)
			}
		}(orders[i])
		go func(o string) {
			defer func() { done <- struct{}{} }()
			if code, b := e.do(t, "POST", "/v1/shipments/cancel?orderId="+o, o+":cancel-shipment", ""); code != 200 {
				t.Errorf("cancel by order %s = %d %s", o, code, b)
			}
		}(orders[i])
	}
	for range 2 * len(orders) {
		<-done
	}
	if n := e.count(t, "SELECT count(*) FROM shipments WHERE order_id = ANY($1) AND status <> 'cancelled'", orders); n != 0 {
		t.Fatalf("%d shipments live after their order was cancelled, want 0", n)
	}
}

// A shipment the saga booked (under {orderId}:ship) is cancelled only by
// the saga's compensation while the order is open: a cancel by shipment id,
// or by order id without the saga's key, is a 409 saga_owned naming the
// order and changes nothing; delivering it is never refused.
func TestSagaShipmentIsCancelledOnlyByItsCompensation(t *testing.T) {
	e := newEnv(t)
	sh := e.create(t, uuid.NewString())
	for _, tt := range []struct{ name, path, key, field string }{
		{"by shipment id", "/v1/shipments/" + sh.ShipmentID + "/cancel", "", "id"},
		{"by order id without a key", "/v1/shipments/cancel?orderId=" + sh.OrderID, "", "orderId"},
		{"by order id with another key", "/v1/shipments/cancel?orderId=" + sh.OrderID, "my-cancel", "orderId"},
	} {
		code, b := e.do(t, "POST", tt.path, tt.key, "")
		if code != 409 || !bytes.Contains(b, []byte(`"error":"`+shipping.ErrCodeSagaOwned+`"`)) ||
			!bytes.Contains(b, []byte(`"field":"`+tt.field+`"`)) || !bytes.Contains(b, []byte(sh.OrderID)) {
			t.Fatalf("cancel %s = %d %s, want 409 saga_owned naming %s and the order", tt.name, code, b, tt.field)
		}
	}
	if n := e.events(t, "shipment.cancelled"); n != 0 {
		t.Fatalf("shipment.cancelled rows = %d after refused cancels, want 0", n)
	}
	other := e.create(t, uuid.NewString())
	if code, b := e.do(t, "POST", "/v1/shipments/"+other.ShipmentID+"/deliver", "", ""); code != 200 {
		t.Fatalf("deliver the saga's shipment = %d %s, want 200", code, b)
	}
	code, b := e.do(t, "POST", "/v1/shipments/cancel?orderId="+sh.OrderID, sh.OrderID+":cancel-shipment", "")
	if l := decode[shipping.ShipmentList](t, b); code != 200 || len(l.Shipments) != 1 || l.Shipments[0].Status != shipping.StatusCancelled {
		t.Fatalf("the saga's compensation = %d %s, want the shipment cancelled", code, b)
	}
	if code, b := e.do(t, "POST", "/v1/shipments/"+sh.ShipmentID+"/cancel", "", ""); code != 200 {
		t.Fatalf("cancel by id after the compensation = %d %s, want 200 (nothing left to change)", code, b)
	}
}
