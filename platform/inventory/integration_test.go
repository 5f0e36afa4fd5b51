//go:build integration

package inventory_test

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
	"github.com/stampede-dev/stampede/platform/inventory"
	"github.com/stampede-dev/stampede/platform/outbox"
	"github.com/stampede-dev/stampede/platform/postgres"
	"github.com/stampede-dev/stampede/platform/web"
)

// env is the service on its own throwaway schema of the stack's database,
// served in-process.
type env struct {
	db    *pgxpool.Pool
	store *inventory.Store
	url   string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	schema := "inventory_it_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	db, err := postgres.Open(ctx, config.PostgresURL(), schema, 60, 5*time.Second)
	if err != nil {
		t.Fatalf("the stack's PostgreSQL is not reachable (run with `make test`): %v", err)
	}
	t.Cleanup(func() {
		db.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		db.Close()
	})
	if err := postgres.Migrate(ctx, db, schema, inventory.Migrations()); err != nil {
		t.Fatal(err)
	}
	if err := outbox.EnsureTable(ctx, db); err != nil {
		t.Fatal(err)
	}
	store := inventory.NewStore(db)
	if err := store.Seed(ctx, 3, 1000); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(web.Middleware((&inventory.Service{Store: store, Log: log}).Router(), log, nil))
	t.Cleanup(srv.Close)
	return &env{db: db, store: store, url: srv.URL}
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

func (e *env) stock(t *testing.T, sku string) inventory.Stock {
	t.Helper()
	code, b := e.do(t, "GET", "/v1/stock/"+sku, "", "")
	if code != 200 {
		t.Fatalf("GET stock %s = %d %s", sku, code, b)
	}
	var st inventory.Stock
	json.Unmarshal(b, &st)
	return st
}

func (e *env) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := e.db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func reserveBody(order string, lines ...any) string {
	var items []string
	for i := 0; i < len(lines); i += 2 {
		items = append(items, fmt.Sprintf(`{"sku":%q,"qty":%d}`, lines[i], lines[i+1]))
	}
	return fmt.Sprintf(`{"orderId":%q,"items":[%s]}`, order, strings.Join(items, ","))
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func TestSeedAndStock(t *testing.T) {
	e := newEnv(t)
	if st := e.stock(t, "SKU-00003"); st.OnHand != 1000 || st.Available != 1000 || st.Reserved != 0 {
		t.Fatalf("SKU-00003 = %+v, want 1000 on hand and available", st)
	}
	if st := e.stock(t, "SKU-OOS"); st.OnHand != 0 || st.Available != 0 {
		t.Fatalf("SKU-OOS = %+v, want 0", st)
	}
	if code, b := e.do(t, "GET", "/v1/stock/SKU-00004", "", ""); code != 404 || !bytes.Contains(b, []byte(`"field":"sku"`)) {
		t.Fatalf("unknown sku = %d %s, want 404 naming sku", code, b)
	}
	// A second seed (a restart) keeps what is there.
	e.store.SetStock(context.Background(), "SKU-00001", 7)
	if err := e.store.Seed(context.Background(), 3, 1000); err != nil {
		t.Fatal(err)
	}
	if st := e.stock(t, "SKU-00001"); st.OnHand != 7 {
		t.Fatalf("after reseed SKU-00001 on hand = %d, want 7 (kept)", st.OnHand)
	}
}

func TestReserveReplayChangesNothing(t *testing.T) {
	e := newEnv(t)
	order := uuid.NewString()
	body := reserveBody(order, "SKU-00001", 2, "SKU-00002", 3, "SKU-00001", 1)
	code, first := e.do(t, "POST", "/v1/reservations", order+":reserve", body)
	if code != 201 {
		t.Fatalf("reserve = %d %s, want 201", code, first)
	}
	r := decode[inventory.Reservation](t, first)
	if r.ReservationID == "" || r.OrderID != order || r.Status != inventory.StatusReserved || len(r.Items) != 2 ||
		r.Items[0] != (inventory.ReservedItem{SKU: "SKU-00001", Qty: 3, WarehouseID: inventory.DefaultWarehouse}) {
		t.Fatalf("reservation = %+v, want SKU-00001 x3 and SKU-00002 x3 reserved", r)
	}
	for i := 0; i < 3; i++ {
		code, again := e.do(t, "POST", "/v1/reservations", order+":reserve", body)
		if code != 201 || !bytes.Equal(again, first) {
			t.Fatalf("replay %d = %d %s, want 201 %s", i, code, again, first)
		}
	}
	// Another key for the same order and items: the same reservation, nothing new held.
	if code, b := e.do(t, "POST", "/v1/reservations", "", body); code != 201 || decode[inventory.Reservation](t, b).ReservationID != r.ReservationID {
		t.Fatalf("same order without key = %d %s, want 201 with reservation %s", code, b, r.ReservationID)
	}
	if st := e.stock(t, "SKU-00001"); st.Reserved != 3 || st.Available != 997 {
		t.Fatalf("SKU-00001 = %+v, want 3 reserved after replays", st)
	}
	if st := e.stock(t, "SKU-00002"); st.Reserved != 3 {
		t.Fatalf("SKU-00002 = %+v, want 3 reserved", st)
	}
	if n := e.count(t, "SELECT count(*) FROM reservations WHERE order_id = $1", order); n != 1 {
		t.Fatalf("reservations = %d, want 1", n)
	}
	if n := e.count(t, "SELECT count(*) FROM outbox WHERE topic = 'inventory' AND headers->>'event-type' = 'inventory.reserved'"); n != 1 {
		t.Fatalf("inventory.reserved outbox rows = %d, want 1", n)
	}
	// Same key, other items: refused, nothing changes.
	code, b := e.do(t, "POST", "/v1/reservations", order+":reserve", reserveBody(order, "SKU-00001", 9))
	if code != 422 || !bytes.Contains(b, []byte(inventory.ErrCodeKeyReused)) {
		t.Fatalf("key reused = %d %s, want 422 %s", code, b, inventory.ErrCodeKeyReused)
	}
	code, b = e.do(t, "POST", "/v1/reservations", "other-key", reserveBody(order, "SKU-00001", 9))
	if code != 422 {
		t.Fatalf("same order other items = %d %s, want 422", code, b)
	}
	if st := e.stock(t, "SKU-00001"); st.Reserved != 3 {
		t.Fatalf("SKU-00001 reserved = %d after refused requests, want 3", st.Reserved)
	}
	code, b = e.do(t, "GET", "/v1/reservations?orderId="+order, "", "")
	if l := decode[inventory.ReservationList](t, b); code != 200 || len(l.Reservations) != 1 || l.Reservations[0].ReservationID != r.ReservationID {
		t.Fatalf("list = %d %s, want the one reservation", code, b)
	}
}

func TestOutOfStockHoldsNothingAndReplays(t *testing.T) {
	e := newEnv(t)
	order := uuid.NewString()
	body := reserveBody(order, "SKU-00001", 5, "SKU-OOS", 1)
	code, first := e.do(t, "POST", "/v1/reservations", order+":reserve", body)
	oos := decode[inventory.OutOfStock](t, first)
	if code != 409 || oos.Error != inventory.ErrCodeOutOfStock || oos.SKU != "SKU-OOS" || oos.Requested != 1 || oos.Available != 0 {
		t.Fatalf("reserve = %d %s, want 409 out_of_stock on SKU-OOS", code, first)
	}
	if st := e.stock(t, "SKU-00001"); st.Reserved != 0 {
		t.Fatalf("SKU-00001 reserved = %d, want 0 (all or nothing)", st.Reserved)
	}
	// Stock arrives: the repeat still answers the first result.
	e.store.SetStock(context.Background(), "SKU-OOS", 100)
	if code, again := e.do(t, "POST", "/v1/reservations", order+":reserve", body); code != 409 || !bytes.Equal(again, first) {
		t.Fatalf("replay = %d %s, want the first 409 %s", code, again, first)
	}
	if n := e.count(t, "SELECT count(*) FROM reservations"); n != 0 {
		t.Fatalf("reservations = %d, want 0", n)
	}
	// Too many units of a stocked SKU.
	code, b := e.do(t, "POST", "/v1/reservations", "", reserveBody(uuid.NewString(), "SKU-00002", 1001))
	if oos := decode[inventory.OutOfStock](t, b); code != 409 || oos.SKU != "SKU-00002" || oos.Available != 1000 {
		t.Fatalf("over-reserve = %d %s, want 409 with 1000 available", code, b)
	}
	// Unknown SKU: out of stock, with the reason.
	code, b = e.do(t, "POST", "/v1/reservations", "", reserveBody(uuid.NewString(), "SKU-00001", 1, "NOPE", 1))
	if oos := decode[inventory.OutOfStock](t, b); code != 409 || oos.SKU != "NOPE" || oos.Reason != "unknown_sku" {
		t.Fatalf("unknown sku = %d %s, want 409 out_of_stock reason unknown_sku", code, b)
	}
	if n := e.count(t, "SELECT count(*) FROM outbox"); n != 0 {
		t.Fatalf("outbox rows = %d, want 0", n)
	}
}

func TestReleaseIsIdempotent(t *testing.T) {
	e := newEnv(t)
	order := uuid.NewString()
	code, b := e.do(t, "POST", "/v1/reservations", "", reserveBody(order, "SKU-00001", 4))
	if code != 201 {
		t.Fatalf("reserve = %d %s", code, b)
	}
	r := decode[inventory.Reservation](t, b)
	for i := 0; i < 3; i++ {
		code, b := e.do(t, "POST", "/v1/reservations/"+r.ReservationID+"/release", "", "")
		got := decode[inventory.Reservation](t, b)
		if code != 200 || got.Status != inventory.StatusReleased || got.ReleasedAt == nil || got.ReservationID != r.ReservationID {
			t.Fatalf("release %d = %d %s, want 200 released", i, code, b)
		}
		if st := e.stock(t, "SKU-00001"); st.Reserved != 0 || st.Available != 1000 {
			t.Fatalf("after release %d SKU-00001 = %+v, want everything back once", i, st)
		}
	}
	if n := e.count(t, "SELECT count(*) FROM outbox WHERE headers->>'event-type' = 'inventory.released'"); n != 1 {
		t.Fatalf("inventory.released rows = %d, want 1", n)
	}
	// A late reserve for the released order holds nothing again.
	code, b = e.do(t, "POST", "/v1/reservations", "late", reserveBody(order, "SKU-00001", 4))
	if got := decode[inventory.Reservation](t, b); code != 201 || got.Status != inventory.StatusReleased {
		t.Fatalf("late reserve = %d %s, want the released reservation", code, b)
	}
	if st := e.stock(t, "SKU-00001"); st.Reserved != 0 {
		t.Fatalf("late reserve held %d, want 0", st.Reserved)
	}
	if code, b := e.do(t, "POST", "/v1/reservations/"+uuid.NewString()+"/release", "", ""); code != 404 || !bytes.Contains(b, []byte(`"field":"id"`)) {
		t.Fatalf("release unknown = %d %s, want 404 naming id", code, b)
	}
	if code, _ := e.do(t, "POST", "/v1/reservations/not-a-uuid/release", "", ""); code != 404 {
		t.Fatalf("release bad id = %d, want 404", code)
	}
}

func TestReleaseByOrder(t *testing.T) {
	e := newEnv(t)
	// The reserve happened but its response was lost: release by order id undoes it.
	order := uuid.NewString()
	if code, b := e.do(t, "POST", "/v1/reservations", order+":reserve", reserveBody(order, "SKU-00002", 6)); code != 201 {
		t.Fatalf("reserve = %d %s", code, b)
	}
	for i := 0; i < 2; i++ {
		code, b := e.do(t, "POST", "/v1/reservations/release?orderId="+order, order+":release", "")
		l := decode[inventory.ReservationList](t, b)
		if code != 200 || len(l.Reservations) != 1 || l.Reservations[0].Status != inventory.StatusReleased {
			t.Fatalf("release by order %d = %d %s, want the released reservation", i, code, b)
		}
	}
	if st := e.stock(t, "SKU-00002"); st.Reserved != 0 {
		t.Fatalf("SKU-00002 reserved = %d, want 0", st.Reserved)
	}
	// The reserve never happened: nothing to release, and one that arrives
	// after the compensation is refused and holds nothing.
	ghost := uuid.NewString()
	code, b := e.do(t, "POST", "/v1/reservations/release?orderId="+ghost, "", "")
	if l := decode[inventory.ReservationList](t, b); code != 200 || len(l.Reservations) != 0 {
		t.Fatalf("release of an order that holds nothing = %d %s, want 200 empty", code, b)
	}
	code, b = e.do(t, "POST", "/v1/reservations", ghost+":reserve", reserveBody(ghost, "SKU-00002", 1))
	if code != 409 || !bytes.Contains(b, []byte(inventory.ErrCodeOrderClosed)) {
		t.Fatalf("reserve after release by order = %d %s, want 409 order_closed", code, b)
	}
	if st := e.stock(t, "SKU-00002"); st.Reserved != 0 {
		t.Fatalf("SKU-00002 reserved = %d, want 0", st.Reserved)
	}
}

func TestConcurrentReservationsNeverOversell(t *testing.T) {
	e := newEnv(t)
	e.store.SetStock(context.Background(), "SKU-TEN", 10)
	var wg sync.WaitGroup
	codes := make(chan int, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _ := e.do(t, "POST", "/v1/reservations", "", reserveBody(uuid.NewString(), "SKU-TEN", 1))
			codes <- code
		}()
	}
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	if got[201] != 10 || got[409] != 40 {
		t.Fatalf("answers = %v, want 10 x 201 and 40 x 409", got)
	}
	if st := e.stock(t, "SKU-TEN"); st.Reserved != 10 || st.Available != 0 {
		t.Fatalf("SKU-TEN = %+v, want 10 reserved, 0 available", st)
	}
}

// Orders that lock the same SKUs listed in opposite orders never deadlock,
// and concurrent duplicates of one key hold once.
func TestConcurrentOppositeOrderAndDuplicates(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	fails := make(chan string, 100)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := reserveBody(uuid.NewString(), "SKU-00001", 1, "SKU-00002", 1, "SKU-00003", 1)
			if i%2 == 1 {
				body = strings.Replace(body, `"SKU-00001"`, `"SKU-X"`, 1)
				body = strings.Replace(body, `"SKU-00003"`, `"SKU-00001"`, 1)
				body = strings.Replace(body, `"SKU-X"`, `"SKU-00003"`, 1)
			}
			if code, b := e.do(t, "POST", "/v1/reservations", "", body); code != 201 {
				fails <- fmt.Sprintf("%d %s", code, b)
			}
		}(i)
	}
	order := uuid.NewString()
	bodies := make(chan string, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, b := e.do(t, "POST", "/v1/reservations", order+":reserve", reserveBody(order, "SKU-00003", 5))
			if code != 201 {
				fails <- fmt.Sprintf("duplicate: %d %s", code, b)
			}
			bodies <- string(b)
		}()
	}
	wg.Wait()
	close(fails)
	close(bodies)
	for f := range fails {
		t.Error(f)
	}
	var first string
	for b := range bodies {
		if first == "" {
			first = b
		} else if b != first {
			t.Fatalf("duplicates answered differently:\n%s\n%s", first, b)
		}
	}
	for sku, want := range map[string]int64{"SKU-00001": 40, "SKU-00002": 40, "SKU-00003": 45} {
		if st := e.stock(t, sku); st.Reserved != want {
			t.Errorf("%s reserved = %d, want %d", sku, st.Reserved, want)
		}
	}
}

func TestBadInputWritesNothing(t *testing.T) {
	e := newEnv(t)
	for _, body := range []string{
		`{"orderId":"o","items":[{"sku":"SKU-00001","qty":0}]}`,
		`{"orderId":"o","items":[{"sku":"SKU-00001","qty":1}],"extra":true}`,
		`{"orderId":"","items":[{"sku":"SKU-00001","qty":1}]}`,
	} {
		if code, b := e.do(t, "POST", "/v1/reservations", "", body); code != 400 || !bytes.Contains(b, []byte(`"field"`)) {
			t.Fatalf("%s = %d %s, want 400 naming the field", body, code, b)
		}
	}
	if n := e.count(t, "SELECT (SELECT count(*) FROM reservations) + (SELECT count(*) FROM idempotency_keys) + (SELECT sum(reserved) FROM stock)"); n != 0 {
		t.Fatalf("rows written by bad input = %d, want 0", n)
	}
}

// A release by order racing the reserve never leaves stock held: the
// reserve either lands first and is released, or is refused as order_closed.
func TestReleaseByOrderRacingReserve(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	orders := make([]string, 20)
	for i := range orders {
		orders[i] = uuid.NewString()
		wg.Add(2)
		go func(o string) {
			defer wg.Done()
			if code, b := e.do(t, "POST", "/v1/reservations", o+":reserve", reserveBody(o, "SKU-00001", 1)); code != 201 && code != 409 {
				t.Errorf("reserve %s = %d %s, want 201 or 409", o, code, b)
			}
		}(orders[i])
		go func(o string) {
			defer wg.Done()
			if code, b := e.do(t, "POST", "/v1/reservations/release?orderId="+o, o+":release", ""); code != 200 {
				t.Errorf("release by order %s = %d %s", o, code, b)
			}
		}(orders[i])
	}
	wg.Wait()
	if st := e.stock(t, "SKU-00001"); st.Reserved != 0 {
		t.Fatalf("SKU-00001 reserved = %d after every order was released, want 0", st.Reserved)
	}
	if n := e.count(t, "SELECT count(*) FROM reservations WHERE status = 'reserved'"); n != 0 {
		t.Fatalf("%d reservations still held, want 0", n)
	}
}

// Stock the saga reserved (under {orderId}:reserve) is released only by the
// saga's compensation while the order is open: a release by reservation id,
// or by order id without the saga's key, is a 409 saga_owned naming the
// order and holds the stock.
func TestSagaReservationIsReleasedOnlyByItsCompensation(t *testing.T) {
	e := newEnv(t)
	order := uuid.NewString()
	code, b := e.do(t, "POST", "/v1/reservations", order+":reserve", reserveBody(order, "SKU-00003", 2))
	if code != 201 {
		t.Fatalf("reserve = %d %s", code, b)
	}
	r := decode[inventory.Reservation](t, b)
	for _, tt := range []struct{ name, path, key, field string }{
		{"by reservation id", "/v1/reservations/" + r.ReservationID + "/release", "", "id"},
		{"by order id without a key", "/v1/reservations/release?orderId=" + order, "", "orderId"},
	} {
		code, b := e.do(t, "POST", tt.path, tt.key, "")
		if code != 409 || !bytes.Contains(b, []byte(`"error":"`+inventory.ErrCodeSagaOwned+`"`)) ||
			!bytes.Contains(b, []byte(`"field":"`+tt.field+`"`)) || !bytes.Contains(b, []byte(order)) {
			t.Fatalf("release %s = %d %s, want 409 saga_owned naming %s and the order", tt.name, code, b, tt.field)
		}
	}
	if st := e.stock(t, "SKU-00003"); st.Reserved != 2 {
		t.Fatalf("SKU-00003 reserved = %d after refused releases, want 2", st.Reserved)
	}
	if code, b := e.do(t, "POST", "/v1/reservations/release?orderId="+order, order+":release", ""); code != 200 {
		t.Fatalf("the saga's compensation = %d %s, want 200", code, b)
	}
	if st := e.stock(t, "SKU-00003"); st.Reserved != 0 {
		t.Fatalf("SKU-00003 reserved = %d after the compensation, want 0", st.Reserved)
	}
}
