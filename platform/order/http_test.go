package order

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/web"
)

// fakeOrders records calls; Create fails the test when bad input reaches it.
type fakeOrders struct {
	mu      sync.Mutex
	created []CreateRequest
	keys    map[string]CreateResponse
}

func (f *fakeOrders) Create(_ context.Context, req CreateRequest, key, _ string, _ time.Time) (CreateResponse, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.keys[key]; ok && key != "" {
		return r, true, nil
	}
	f.created = append(f.created, req)
	resp := CreateResponse{OrderID: "3f1c1e4e-6c43-4b7c-9a52-1b0f7d7a9e01", Status: StatusPending, TotalCents: req.Total()}
	if key != "" {
		f.keys[key] = resp
	}
	return resp, false, nil
}

func (f *fakeOrders) Get(_ context.Context, id string) (Order, error) {
	return Order{}, ErrNotFound
}

func (f *fakeOrders) List(context.Context, time.Time, string, string, int) (List, error) {
	return List{Orders: []Summary{}}, nil
}

const goodBody = `{"userId":"u-1","currency":"USD","items":[{"sku":"SKU-00001","qty":2,"priceCents":1999}],
 "shippingAddress":{"name":"Ada","line1":"1 Main St","city":"Springfield","postalCode":"12345","country":"US"},
 "payment":{"method":"card","token":"tok_visa"}}`

// with returns goodBody changed by edit, applied to the decoded JSON.
func with(t *testing.T, edit func(m map[string]any)) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(goodBody), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func item(m map[string]any) map[string]any { return m["items"].([]any)[0].(map[string]any) }
func addr(m map[string]any) map[string]any { return m["shippingAddress"].(map[string]any) }

func openAPIRouter(t *testing.T) routers.Router {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI)
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is invalid: %v", err)
	}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkAgainstSpec validates a response against the OpenAPI document.
func checkAgainstSpec(t *testing.T, router routers.Router, req *http.Request, body []byte, rec *httptest.ResponseRecorder) {
	t.Helper()
	req = req.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.URL.Scheme, req.URL.Host = "http", "127.0.0.1:8080"
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Fatalf("no route in openapi.yaml for %s %s: %v", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{ExcludeRequestBody: rec.Code >= 400, MultiError: true}}
	if rec.Code < 400 {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("accepted request does not match openapi.yaml: %v", err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
		Body: io.NopCloser(bytes.NewReader(rec.Body.Bytes()))}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("response %d does not match openapi.yaml: %v", rec.Code, err)
	}
}

func TestCreateRefusesBadInput(t *testing.T) {
	long := strings.Repeat("x", 300)
	tooMany := func(m map[string]any) {
		var lines []any
		for i := 0; i < 101; i++ {
			lines = append(lines, map[string]any{"sku": "SKU-00001", "qty": 1, "priceCents": 1})
		}
		m["items"] = lines
	}
	tests := []struct {
		name        string
		body        string
		contentType string
		key         string
		wantCode    int
		wantField   string
	}{
		{name: "err/invalid json", body: `{"userId":`, wantCode: 400, wantField: "body"},
		{name: "err/not an object", body: `[1,2]`, wantCode: 400, wantField: "body"},
		{name: "err/duplicate key", body: strings.Replace(goodBody, `"userId":"u-1"`, `"userId":"u-1","userId":"u-2"`, 1), wantCode: 400, wantField: "userId"},
		{name: "err/duplicate key in an item", body: strings.Replace(goodBody, `"qty":2`, `"qty":2,"qty":200`, 1), wantCode: 400, wantField: "items[0].qty"},
		{name: "err/duplicate key in the address", body: strings.Replace(goodBody, `"city":"Springfield"`, `"city":"Springfield","city":"Shelbyville"`, 1), wantCode: 400, wantField: "shippingAddress.city"},
		{name: "err/total over what Payments charges", body: with(t, func(m map[string]any) {
			var lines []any
			for i := 0; i < 100; i++ {
				lines = append(lines, map[string]any{"sku": "SKU-00001", "qty": 1000, "priceCents": 100000000})
			}
			m["items"] = lines
		}), wantCode: 422, wantField: "items"},
		{name: "err/total one cent over", body: with(t, func(m map[string]any) {
			// 10 lines of 1000 x 10,000,000 cents are MaxTotalCents; one more cent is over.
			var lines []any
			for i := 0; i < 10; i++ {
				lines = append(lines, map[string]any{"sku": "SKU-00001", "qty": 1000, "priceCents": 10000000})
			}
			lines = append(lines, map[string]any{"sku": "SKU-00002", "qty": 1, "priceCents": 1})
			m["items"] = lines
		}), wantCode: 422, wantField: "items"},
		{name: "err/non-UTF-8 idempotency key", body: goodBody, key: "k\xff", wantCode: 400, wantField: "Idempotency-Key"},
		{name: "err/unknown top field", body: with(t, func(m map[string]any) { m["coupon"] = "X" }), wantCode: 400, wantField: "coupon"},
		{name: "err/unknown item field", body: with(t, func(m map[string]any) { item(m)["color"] = "red" }), wantCode: 400, wantField: "items[0].color"},
		{name: "err/missing userId", body: with(t, func(m map[string]any) { delete(m, "userId") }), wantCode: 400, wantField: "userId"},
		{name: "err/empty userId", body: with(t, func(m map[string]any) { m["userId"] = " " }), wantCode: 400, wantField: "userId"},
		{name: "err/userId not a string", body: with(t, func(m map[string]any) { m["userId"] = 7 }), wantCode: 400, wantField: "userId"},
		{name: "err/missing currency", body: with(t, func(m map[string]any) { delete(m, "currency") }), wantCode: 400, wantField: "currency"},
		{name: "err/unknown currency", body: with(t, func(m map[string]any) { m["currency"] = "ABC" }), wantCode: 400, wantField: "currency"},
		{name: "err/lowercase currency", body: with(t, func(m map[string]any) { m["currency"] = "usd" }), wantCode: 400, wantField: "currency"},
		{name: "err/missing items", body: with(t, func(m map[string]any) { delete(m, "items") }), wantCode: 400, wantField: "items"},
		{name: "err/null items", body: with(t, func(m map[string]any) { m["items"] = nil }), wantCode: 400, wantField: "items"},
		{name: "err/empty items", body: with(t, func(m map[string]any) { m["items"] = []any{} }), wantCode: 400, wantField: "items"},
		{name: "err/items not an array", body: with(t, func(m map[string]any) { m["items"] = "SKU-00001" }), wantCode: 400, wantField: "items"},
		{name: "err/more than 100 items", body: with(t, tooMany), wantCode: 400, wantField: "items"},
		{name: "err/item not an object", body: with(t, func(m map[string]any) { m["items"] = []any{1} }), wantCode: 400, wantField: "items[0]"},
		{name: "err/missing sku", body: with(t, func(m map[string]any) { delete(item(m), "sku") }), wantCode: 400, wantField: "items[0].sku"},
		{name: "err/qty zero", body: with(t, func(m map[string]any) { item(m)["qty"] = 0 }), wantCode: 400, wantField: "items[0].qty"},
		{name: "err/qty negative", body: with(t, func(m map[string]any) { item(m)["qty"] = -1 }), wantCode: 400, wantField: "items[0].qty"},
		{name: "err/qty over 1000", body: with(t, func(m map[string]any) { item(m)["qty"] = 1001 }), wantCode: 400, wantField: "items[0].qty"},
		{name: "err/qty fractional", body: with(t, func(m map[string]any) { item(m)["qty"] = 1.5 }), wantCode: 400, wantField: "items[0].qty"},
		{name: "err/qty as string", body: with(t, func(m map[string]any) { item(m)["qty"] = "2" }), wantCode: 400, wantField: "items[0].qty"},
		{name: "err/missing qty", body: with(t, func(m map[string]any) { delete(item(m), "qty") }), wantCode: 400, wantField: "items[0].qty"},
		{name: "err/negative price", body: with(t, func(m map[string]any) { item(m)["priceCents"] = -1 }), wantCode: 400, wantField: "items[0].priceCents"},
		{name: "err/fractional price", body: with(t, func(m map[string]any) { item(m)["priceCents"] = 19.99 }), wantCode: 400, wantField: "items[0].priceCents"},
		{name: "err/exponent price", body: strings.Replace(goodBody, `"priceCents":1999`, `"priceCents":2e3`, 1), wantCode: 400, wantField: "items[0].priceCents"},
		{name: "err/second line bad", body: with(t, func(m map[string]any) {
			m["items"] = append(m["items"].([]any), map[string]any{"sku": "SKU-00002", "qty": 0, "priceCents": 5})
		}), wantCode: 400, wantField: "items[1].qty"},
		{name: "err/missing address", body: with(t, func(m map[string]any) { delete(m, "shippingAddress") }), wantCode: 400, wantField: "shippingAddress"},
		{name: "err/missing address name", body: with(t, func(m map[string]any) { delete(addr(m), "name") }), wantCode: 400, wantField: "shippingAddress.name"},
		{name: "err/missing line1", body: with(t, func(m map[string]any) { delete(addr(m), "line1") }), wantCode: 400, wantField: "shippingAddress.line1"},
		{name: "err/missing city", body: with(t, func(m map[string]any) { delete(addr(m), "city") }), wantCode: 400, wantField: "shippingAddress.city"},
		{name: "err/missing postal code", body: with(t, func(m map[string]any) { delete(addr(m), "postalCode") }), wantCode: 400, wantField: "shippingAddress.postalCode"},
		{name: "err/missing country", body: with(t, func(m map[string]any) { delete(addr(m), "country") }), wantCode: 400, wantField: "shippingAddress.country"},
		{name: "err/country alpha-3", body: with(t, func(m map[string]any) { addr(m)["country"] = "USA" }), wantCode: 400, wantField: "shippingAddress.country"},
		{name: "err/country unknown", body: with(t, func(m map[string]any) { addr(m)["country"] = "QQ" }), wantCode: 400, wantField: "shippingAddress.country"},
		{name: "err/address too long", body: with(t, func(m map[string]any) { addr(m)["line1"] = long }), wantCode: 400, wantField: "shippingAddress.line1"},
		// Text PostgreSQL would refuse (a 500 before) or logs would choke on.
		{name: "err/NUL in userId", body: with(t, func(m map[string]any) { m["userId"] = "u-\x001" }), wantCode: 400, wantField: "userId"},
		{name: "err/NUL in name", body: with(t, func(m map[string]any) { addr(m)["name"] = "A\x00da" }), wantCode: 400, wantField: "shippingAddress.name"},
		{name: "err/newline in city", body: with(t, func(m map[string]any) { addr(m)["city"] = "Spring\nfield" }), wantCode: 400, wantField: "shippingAddress.city"},
		{name: "err/not UTF-8 in line1", body: strings.Replace(goodBody, `"1 Main St"`, "\"1 Main \xff St\"", 1), wantCode: 400, wantField: "shippingAddress.line1"},
		{name: "err/missing payment", body: with(t, func(m map[string]any) { delete(m, "payment") }), wantCode: 400, wantField: "payment"},
		{name: "err/missing token", body: with(t, func(m map[string]any) { delete(m["payment"].(map[string]any), "token") }), wantCode: 400, wantField: "payment.token"},
		{name: "err/empty token", body: with(t, func(m map[string]any) { m["payment"].(map[string]any)["token"] = "" }), wantCode: 400, wantField: "payment.token"},
		{name: "err/unknown method", body: with(t, func(m map[string]any) { m["payment"].(map[string]any)["method"] = "cash" }), wantCode: 400, wantField: "payment.method"},
		{name: "err/idempotency key too long", body: goodBody, key: strings.Repeat("k", 256), wantCode: 400, wantField: "Idempotency-Key"},
		{name: "err/body over 64 KiB", body: `{"userId":"` + strings.Repeat("u", 70<<10) + `"}`, wantCode: 413, wantField: "body"},
		{name: "err/not json content type", body: goodBody, contentType: "text/plain", wantCode: 415, wantField: "Content-Type"},
		{name: "err/no content type", body: goodBody, contentType: "-", wantCode: 415, wantField: "Content-Type"},
	}
	router := openAPIRouter(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &fakeOrders{keys: map[string]CreateResponse{}}
			svc := &Service{Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			req := httptest.NewRequest(http.MethodPost, "/v1/orders", strings.NewReader(tt.body))
			switch tt.contentType {
			case "":
				req.Header.Set("Content-Type", "application/json")
			case "-":
			default:
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.key != "" {
				req.Header.Set(web.HeaderIdempotencyKey, tt.key)
			}
			rec := httptest.NewRecorder()
			svc.Router().ServeHTTP(rec, req)

			if rec.Code != tt.wantCode {
				t.Fatalf("code = %d, want %d; body %s", rec.Code, tt.wantCode, rec.Body)
			}
			var got struct {
				Error string `json:"error"`
				Field string `json:"field"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("error body is not JSON: %s", rec.Body)
			}
			if got.Error == "" {
				t.Errorf("error body has no error message: %s", rec.Body)
			}
			if got.Field != tt.wantField {
				t.Errorf("field = %q, want %q (error %q)", got.Field, tt.wantField, got.Error)
			}
			if len(store.created) != 0 {
				t.Errorf("bad input reached the store: %+v", store.created)
			}
			checkAgainstSpec(t, router, req, []byte(tt.body), rec)
		})
	}
}

func TestCreateAccepts(t *testing.T) {
	router := openAPIRouter(t)
	tests := []struct {
		name, body string
		wantTotal  int64
	}{
		{"ok/seed example", goodBody, 3998},
		{"ok/optional address parts", with(t, func(m map[string]any) { addr(m)["line2"] = "Apt 4"; addr(m)["region"] = "IL" }), 3998},
		{"ok/free item", with(t, func(m map[string]any) { item(m)["priceCents"] = 0 }), 0},
		{"ok/undeliverable sandbox country", with(t, func(m map[string]any) { addr(m)["country"] = "XX" }), 3998},
		{"ok/100 lines", with(t, func(m map[string]any) {
			var lines []any
			for i := 0; i < 100; i++ {
				lines = append(lines, map[string]any{"sku": "SKU-00001", "qty": 1, "priceCents": 100000000})
			}
			m["items"] = lines
		}), 100 * 100000000},
		{"ok/total exactly what Payments charges", with(t, func(m map[string]any) {
			var lines []any
			for i := 0; i < 10; i++ {
				lines = append(lines, map[string]any{"sku": "SKU-00001", "qty": 1000, "priceCents": 10000000})
			}
			m["items"] = lines
		}), MaxTotalCents},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &fakeOrders{keys: map[string]CreateResponse{}}
			svc := &Service{Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			req := httptest.NewRequest(http.MethodPost, "/v1/orders", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json; charset=utf-8")
			rec := httptest.NewRecorder()
			svc.Router().ServeHTTP(rec, req)
			if rec.Code != http.StatusAccepted {
				t.Fatalf("code = %d, want 202; body %s", rec.Code, rec.Body)
			}
			var got CreateResponse
			json.Unmarshal(rec.Body.Bytes(), &got)
			if got.TotalCents != tt.wantTotal || got.Status != StatusPending {
				t.Errorf("response = %+v, want total %d and pending", got, tt.wantTotal)
			}
			if loc := rec.Header().Get("Location"); loc != "/v1/orders/"+got.OrderID {
				t.Errorf("Location = %q, want /v1/orders/%s", loc, got.OrderID)
			}
			if cid := rec.Header().Get("X-Correlation-ID"); cid != got.OrderID {
				t.Errorf("X-Correlation-ID = %q, want the order id when the client sent none", cid)
			}
			checkAgainstSpec(t, router, req, []byte(tt.body), rec)
		})
	}
}

func TestGetUnknownIs404(t *testing.T) {
	svc := &Service{Store: &fakeOrders{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	req := httptest.NewRequest(http.MethodGet, "/v1/orders/3f1c1e4e-6c43-4b7c-9a52-1b0f7d7a9e01", nil)
	rec := httptest.NewRecorder()
	svc.Router().ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound {
		t.Fatalf("code = %d, want 404", rec.Code)
	}
	checkAgainstSpec(t, openAPIRouter(t), req, nil, rec)
}

func TestListRefusesBadParameters(t *testing.T) {
	svc := &Service{Store: &fakeOrders{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, tt := range []struct{ query, field string }{
		{"since=yesterday", "since"},
		{"limit=0", "limit"},
		{"limit=5000", "limit"},
	} {
		rec := httptest.NewRecorder()
		svc.Router().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/orders?"+tt.query, nil))
		var got struct{ Field string }
		json.Unmarshal(rec.Body.Bytes(), &got)
		if rec.Code != http.StatusBadRequest || got.Field != tt.field {
			t.Errorf("GET /v1/orders?%s = %d field %q, want 400 field %q", tt.query, rec.Code, got.Field, tt.field)
		}
	}
}

// ownedOrders holds one order of u-1 and records the user a list asked for.
type ownedOrders struct {
	fakeOrders
	listedFor []string
}

const ownedID = "3f1c1e4e-6c43-4b7c-9a52-1b0f7d7a9e01"

func (f *ownedOrders) Get(_ context.Context, id string) (Order, error) {
	if id != ownedID {
		return Order{}, ErrNotFound
	}
	return Order{OrderID: ownedID, UserID: "u-1", Status: StatusDelivered, Items: []event.LineItem{}, History: []HistoryEntry{}}, nil
}

func (f *ownedOrders) List(_ context.Context, _ time.Time, _, userID string, _ int) (List, error) {
	f.listedFor = append(f.listedFor, userID)
	return List{Orders: []Summary{}}, nil
}

// A user's token reads and cancels that user's orders only; another user's
// order answers as if it did not exist, and a list holds the user's own.
func TestOrdersBelongToTheirUser(t *testing.T) {
	tests := []struct {
		name, method, target string
		who                  *web.Principal
		code                 int
		listedFor            string
	}{
		{"ok/owner reads", "GET", "/v1/orders/" + ownedID, &web.Principal{User: "u-1"}, 200, ""},
		{"ok/service reads", "GET", "/v1/orders/" + ownedID, &web.Principal{Service: true}, 200, ""},
		{"ok/owner lists own", "GET", "/v1/orders", &web.Principal{User: "u-1"}, 200, "u-1"},
		{"ok/service lists all", "GET", "/v1/orders", &web.Principal{Service: true}, 200, ""},
		{"ok/owner cancels (already delivered)", "POST", "/v1/orders/" + ownedID + "/cancel", &web.Principal{User: "u-1"}, 409, ""},
		{"err/other user reads", "GET", "/v1/orders/" + ownedID, &web.Principal{User: "u-2"}, 404, ""},
		{"err/other user cancels", "POST", "/v1/orders/" + ownedID + "/cancel", &web.Principal{User: "u-2"}, 404, ""},
		{"err/nobody reads", "GET", "/v1/orders/" + ownedID, nil, 404, ""},
		{"err/nobody lists", "GET", "/v1/orders", nil, 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &ownedOrders{}
			svc := &Service{Store: store, Log: slog.New(slog.DiscardHandler)}
			req := httptest.NewRequest(tt.method, tt.target, nil)
			if tt.who != nil {
				req = req.WithContext(web.WithPrincipal(req.Context(), *tt.who))
			}
			rec := httptest.NewRecorder()
			svc.Router().ServeHTTP(rec, req)
			if rec.Code != tt.code {
				t.Fatalf("code = %d, want %d; body %s", rec.Code, tt.code, rec.Body)
			}
			if tt.code == 200 && tt.target == "/v1/orders" && (len(store.listedFor) != 1 || store.listedFor[0] != tt.listedFor) {
				t.Fatalf("listed for %q, want %q", store.listedFor, tt.listedFor)
			}
		})
	}
}

// The OpenAPI document says which operations are anonymous (security: [])
// exactly where the Guard lets anyone in: Access, and the health routes
// every service opens.
func TestOpenAPISecurityMatchesAccess(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			pattern := method + " " + path
			documented := op.Security != nil && len(*op.Security) == 0
			a, listed := Access[pattern]
			open := (listed && a == web.AccessPublic) || path == web.PathHealth || path == web.PathReady
			if documented != open {
				t.Errorf("%s: anonymous in openapi.yaml %v, in Access %v", pattern, documented, open)
			}
			if !open && (!listed || a != web.AccessUser) {
				t.Errorf("%s: documented for user and service tokens, Access says %v (listed %v)", pattern, a, listed)
			}
			n++
		}
	}
	if n < 6 {
		t.Fatalf("checked %d operations", n)
	}
}

// frozenOrders stands for a frozen PostgreSQL: every call waits for its
// context to end and returns its error, as pgx does.
type frozenOrders struct{}

func (frozenOrders) Create(ctx context.Context, _ CreateRequest, _, _ string, _ time.Time) (CreateResponse, bool, error) {
	<-ctx.Done()
	return CreateResponse{}, false, ctx.Err()
}

func (frozenOrders) Get(ctx context.Context, _ string) (Order, error) {
	<-ctx.Done()
	return Order{}, ctx.Err()
}

func (frozenOrders) List(ctx context.Context, _ time.Time, _, _ string, _ int) (List, error) {
	<-ctx.Done()
	return List{}, ctx.Err()
}

// With a store that never answers, every route answers 503 with Retry-After
// at the request's deadline (web.Limits), as openapi.yaml says.
func TestFrozenStoreAnswers503(t *testing.T) {
	router := openAPIRouter(t)
	svc := &Service{Store: frozenOrders{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h := web.Limit(svc.Router(), web.Limits{Timeout: 100 * time.Millisecond}, nil)
	for _, tt := range []struct{ method, target, body string }{
		{http.MethodPost, "/v1/orders", goodBody},
		{http.MethodGet, "/v1/orders/3f1c1e4e-6c43-4b7c-9a52-1b0f7d7a9e01", ""},
		{http.MethodGet, "/v1/orders?limit=5", ""},
	} {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			// As the guard passes it: the reads need a token.
			req = req.WithContext(web.WithPrincipal(req.Context(), web.Principal{Service: true}))
			rec := httptest.NewRecorder()
			start := time.Now()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
				t.Fatalf("got %d Retry-After %q (%s), want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("answered after %s, want at the 100 ms deadline", took)
			}
			checkAgainstSpec(t, router, req, []byte(tt.body), rec)
		})
	}
}
