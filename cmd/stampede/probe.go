package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/order"
	"github.com/stampede-dev/stampede/platform/web"
)

func runProbe(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede probe", `Sends hostile input to a running stack, one case at a time, and prints each case
with the status it got and a verdict: a 600 KB, a non-UTF-8 or a NUL X-Correlation-ID,
NUL or control characters in userId and the address, a non-UTF-8 Idempotency-Key,
duplicate JSON keys, a total over what Payments charges, a 1 MiB body, 101 items, a
body trickled one byte at a time, and more, on every service. Each must be refused
with a 4xx naming the field (net/http's own 431 and 400 name none). Then it places a
normal order and follows it to in_transit. Every case but the anonymous ones (placing
an order, and those checking that no or a wrong token is refused) carries the service
token (.stampede/secrets/service-token or STAMPEDE_SERVICE_TOKEN). Exit status 1 if a
case got a 5xx, no answer within --timeout, an empty reply or was accepted, or if the
normal order did not complete; 2 on bad usage or without the service token.`)
	var (
		p     prober
		wait  time.Duration
		quiet bool
	)
	ordersURLFlag(fs, &p.urls.orders)
	fs.StringVar(&p.urls.inventory, "inventory-url", "STAMPEDE_INVENTORY_URL", "http://"+config.Addr(config.Inventory), "Inventory base URL")
	fs.StringVar(&p.urls.payments, "payments-url", "", "http://"+config.Addr(config.Payments), "Payments base URL (direct, not through toxiproxy)")
	fs.StringVar(&p.urls.shipping, "shipping-url", "STAMPEDE_SHIPPING_URL", "http://"+config.Addr(config.Shipping), "Shipping base URL")
	fs.StringVar(&p.urls.notifications, "notifications-url", "STAMPEDE_NOTIFICATIONS_URL", "http://"+config.Addr(config.Notifications), "Notifications base URL")
	fs.DurationVar(&p.timeout, "timeout", "", 15*time.Second, "longest wait for one case's answer (the slow body is answered at the services' --request-timeout, 5 s)")
	fs.DurationVar(&wait, "wait", "", 60*time.Second, "longest wait for the normal order to reach in_transit")
	fs.BoolVar(&quiet, "quiet", "", false, "print only the cases that fail")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("probe takes no arguments, got %q", fs.Args())}
	}
	if p.timeout <= 0 || wait <= 0 {
		return usageError{errors.New("--timeout and --wait: want more than 0")}
	}
	tok, err := config.ServiceToken()
	if err != nil {
		// The probe cannot run: exit 2, like bad usage.
		return usageError{fmt.Errorf("the service token (the internal services and reading orders need it): %w", err)}
	}
	p.token = tok
	for _, u := range []string{p.urls.orders, p.urls.inventory, p.urls.payments, p.urls.shipping, p.urls.notifications} {
		if pu, err := url.Parse(u); err != nil || pu.Scheme != "http" || pu.Host == "" {
			return usageError{fmt.Errorf("%q is not an http:// base URL", u)}
		}
	}

	// Each line is printed as its case ends (the trickled body takes
	// seconds), so the columns are padded to the longest case, not tabbed.
	width := len("CASE")
	for _, c := range probeCases() {
		width = max(width, len(c.name))
	}
	fmt.Printf("%-*s  %-24s  %s\n", width, "CASE", "STATUS", "VERDICT")
	failed := 0
	for _, c := range probeCases() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r := p.run(c)
		if !r.ok {
			failed++
		}
		if !quiet || !r.ok {
			verdict := "ok"
			if !r.ok {
				verdict = "FAIL: " + r.why
			}
			fmt.Printf("%-*s  %-24s  %s\n", width, c.name, r.status, verdict)
		}
	}
	id, status, took, err := p.normalOrder(ctx, wait)
	switch {
	case err != nil:
		failed++
		fmt.Printf("normal order %s: FAIL: %v\n", id, err)
	default:
		fmt.Printf("normal order %s: %s in %s: ok\n", id, status, took.Round(10*time.Millisecond))
	}
	if failed > 0 {
		return fmt.Errorf("probe: %d of %d checks failed", failed, len(probeCases())+1)
	}
	fmt.Printf("probe: all %d hostile cases refused with a 4xx, and a normal order completed\n", len(probeCases()))
	return nil
}

// probeURLs are the base URLs of the services probed.
type probeURLs struct{ orders, inventory, payments, shipping, notifications string }

// prober sends the cases.
type prober struct {
	urls    probeURLs
	token   string // the service token, sent unless a case is anonymous
	timeout time.Duration
}

// probeCase is one hostile request and the refusal it must get.
type probeCase struct {
	name    string
	service string // which base URL: orders, inventory, payments, shipping, notifications
	method  string
	path    string
	headers [][2]string // sent as they are, bytes and all
	body    []byte
	ctype   string // Content-Type; "" sends none
	slow    bool   // send the body one byte every 500 ms
	// anon sends no Authorization: placing an order is anonymous; every
	// other case carries the service token, so what it meets is the check
	// of its input, not the guard (the unauthenticated cases set it too).
	anon bool
	// What must come back: the status (0: any 4xx) and the field the JSON
	// error names ("": not checked, for net/http's own plain-text refusals).
	wantCode  int
	wantField string
}

const probeGood = `{"userId":"probe-user","currency":"USD","items":[{"sku":"SKU-00001","qty":1,"priceCents":1999}],` +
	`"shippingAddress":{"name":"Ada","line1":"1 Main St","city":"Springfield","postalCode":"12345","country":"US"},` +
	`"payment":{"method":"card","token":"tok_visa"}}`

func probeLines(n, qty int, price int64) string {
	l := make([]string, n)
	for i := range l {
		l[i] = fmt.Sprintf(`{"sku":"SKU-%05d","qty":%d,"priceCents":%d}`, i+1, qty, price)
	}
	return "[" + strings.Join(l, ",") + "]"
}

func probeWith(old, new string) []byte { return []byte(strings.Replace(probeGood, old, new, 1)) }

// probeCases are the hostile cases, in the order they are sent.
func probeCases() []probeCase {
	post := func(name string, body []byte, code int, field string, headers ...[2]string) probeCase {
		return probeCase{name: name, service: "orders", method: http.MethodPost, path: order.PathOrders, body: body,
			ctype: "application/json", headers: headers, wantCode: code, wantField: field, anon: true}
	}
	good := []byte(probeGood)
	items := `[{"sku":"SKU-00001","qty":1,"priceCents":1999}]`
	return []probeCase{
		post("600 KB X-Correlation-ID", good, http.StatusRequestHeaderFieldsTooLarge, "", [2]string{web.HeaderCorrelationID, strings.Repeat("c", 600<<10)}),
		post("non-UTF-8 X-Correlation-ID", good, http.StatusBadRequest, web.HeaderCorrelationID, [2]string{web.HeaderCorrelationID, "\xff\xfe"}),
		post("NUL in X-Correlation-ID", good, http.StatusBadRequest, "", [2]string{web.HeaderCorrelationID, "a\x00b"}),
		post("129-character X-Correlation-ID", good, http.StatusBadRequest, web.HeaderCorrelationID, [2]string{web.HeaderCorrelationID, strings.Repeat("c", 129)}),
		post("NUL in userId", probeWith(`"probe-user"`, `"probe\u0000user"`), http.StatusBadRequest, "userId"),
		post("NUL in shippingAddress.name", probeWith(`"Ada"`, `"A\u0000da"`), http.StatusBadRequest, "shippingAddress.name"),
		post("newline in shippingAddress.city", probeWith(`"Springfield"`, `"Spring\nfield"`), http.StatusBadRequest, "shippingAddress.city"),
		post("non-UTF-8 in shippingAddress.line1", probeWith(`"1 Main St"`, "\"1 Main \xff St\""), http.StatusBadRequest, "shippingAddress.line1"),
		post("non-UTF-8 Idempotency-Key", good, http.StatusBadRequest, web.HeaderIdempotencyKey, [2]string{web.HeaderIdempotencyKey, "key-\xff"}),
		post("256-byte Idempotency-Key", good, http.StatusBadRequest, web.HeaderIdempotencyKey, [2]string{web.HeaderIdempotencyKey, strings.Repeat("k", 256)}),
		post("duplicate JSON key (userId twice)", probeWith(`"userId":"probe-user"`, `"userId":"probe-user","userId":"someone-else"`), http.StatusBadRequest, "userId"),
		post("duplicate JSON key in an item", probeWith(`"qty":1`, `"qty":1,"qty":1000`), http.StatusBadRequest, "items[0].qty"),
		post("total over what Payments charges", probeWith(items, probeLines(100, 1000, 100_000_000)), http.StatusUnprocessableEntity, "items"),
		post("101 items", probeWith(items, probeLines(101, 1, 1)), http.StatusBadRequest, "items"),
		post("1 MiB body", append(append([]byte(`{"userId":"`), bytes.Repeat([]byte("u"), 1<<20)...), `"}`...), http.StatusRequestEntityTooLarge, "body"),
		{name: "body trickled 1 byte / 500 ms", service: "orders", method: http.MethodPost, path: order.PathOrders, body: good,
			ctype: "application/json", slow: true, wantCode: http.StatusRequestTimeout, wantField: "body", anon: true},
		post("not JSON", []byte(`{"userId":`), http.StatusBadRequest, "body"),
		post("JSON nested 10000 deep", []byte(strings.Repeat("[", 10000)+strings.Repeat("]", 10000)), http.StatusBadRequest, "body"),
		post("unknown field", probeWith(`"currency"`, `"coupon":"FREE","currency"`), http.StatusBadRequest, "coupon"),
		{name: "text/plain body", service: "orders", method: http.MethodPost, path: order.PathOrders, body: good, ctype: "text/plain",
			wantCode: http.StatusUnsupportedMediaType, wantField: "Content-Type", anon: true},
		{name: "GET an order with no token", service: "orders", method: http.MethodGet, path: "/v1/orders/3f1c1e4e-6c43-4b7c-9a52-1b0f7d7a9e01",
			wantCode: http.StatusUnauthorized, wantField: "Authorization", anon: true},
		{name: "inventory with no token", service: "inventory", method: http.MethodGet, path: "/v1/stock/SKU-00001",
			wantCode: http.StatusUnauthorized, wantField: "Authorization", anon: true},
		{name: "payments: a refund with a wrong token", service: "payments", method: http.MethodPost, path: "/v1/refunds?orderId=probe-o",
			ctype: "application/json", headers: [][2]string{{"Authorization", "Bearer not-the-token"}},
			wantCode: http.StatusUnauthorized, wantField: "Authorization", anon: true},
		{name: "GET an order by a NUL id", service: "orders", method: http.MethodGet, path: "/v1/orders/%00", wantCode: http.StatusNotFound, wantField: "id"},
		{name: "list orders with a NUL cursor", service: "orders", method: http.MethodGet, path: "/v1/orders?cursor=%00", wantCode: http.StatusBadRequest, wantField: "cursor"},
		{name: "inventory: stock of a NUL sku", service: "inventory", method: http.MethodGet, path: "/v1/stock/a%00b", wantCode: http.StatusBadRequest, wantField: "sku"},
		{name: "inventory: duplicate key in a reservation", service: "inventory", method: http.MethodPost, path: "/v1/reservations",
			body: []byte(`{"orderId":"probe-o","items":[{"sku":"SKU-00001","qty":1,"qty":500}]}`), ctype: "application/json",
			wantCode: http.StatusBadRequest, wantField: "items[0].qty"},
		{name: "payments: refund by a non-UTF-8 orderId", service: "payments", method: http.MethodPost, path: "/v1/refunds?orderId=%FF",
			ctype: "application/json", wantCode: http.StatusBadRequest, wantField: "orderId"},
		{name: "payments: NUL in a charge's token", service: "payments", method: http.MethodPost, path: "/v1/charges",
			headers: [][2]string{{web.HeaderIdempotencyKey, "probe-charge"}}, ctype: "application/json",
			body: []byte(`{"orderId":"probe-o","amountCents":1,"currency":"USD","token":"tok\u0000"}`), wantCode: http.StatusBadRequest, wantField: "token"},
		{name: "shipping: duplicate key in a shipment", service: "shipping", method: http.MethodPost, path: "/v1/shipments", ctype: "application/json",
			body:     []byte(`{"orderId":"probe-o","orderId":"other","items":[{"sku":"A","qty":1}],"address":{"name":"A","line1":"1","city":"c","postalCode":"1","country":"US"}}`),
			wantCode: http.StatusBadRequest, wantField: "orderId"},
		{name: "notifications: NUL in a contact's email", service: "notifications", method: http.MethodPut, path: "/v1/contacts/probe-user",
			ctype: "application/json", body: []byte(`{"email":"a\u0000@example.test"}`), wantCode: http.StatusBadRequest, wantField: "email"},
	}
}

// probeResult is what one case got.
type probeResult struct {
	status string // "400 userId", "431", "no answer in 15s", ...
	ok     bool
	why    string
}

func (p *prober) base(service string) string {
	switch service {
	case "inventory":
		return p.urls.inventory
	case "payments":
		return p.urls.payments
	case "shipping":
		return p.urls.shipping
	case "notifications":
		return p.urls.notifications
	}
	return p.urls.orders
}

// run sends c over a connection of its own, as raw HTTP/1.1 (so that bytes
// no client library would send go out as they are), and judges the answer.
func (p *prober) run(c probeCase) probeResult {
	u, _ := url.Parse(p.base(c.service))
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		return probeResult{status: "unreachable", why: err.Error()}
	}
	defer conn.Close()
	var head bytes.Buffer
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nAccept: application/json\r\n", c.method, strings.TrimRight(u.Path, "/")+c.path, u.Host)
	if c.ctype != "" {
		fmt.Fprintf(&head, "Content-Type: %s\r\n", c.ctype)
	}
	if !c.anon {
		fmt.Fprintf(&head, "Authorization: Bearer %s\r\n", p.token)
	}
	if c.body != nil || c.method == http.MethodPost || c.method == http.MethodPut {
		fmt.Fprintf(&head, "Content-Length: %d\r\n", len(c.body))
	}
	for _, h := range c.headers {
		head.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	head.WriteString("\r\n")

	stop := make(chan struct{})
	defer close(stop)
	go func() { // the answer may come before the request is all sent (a 431, a 413, a 408)
		if _, err := conn.Write(head.Bytes()); err != nil {
			return
		}
		if !c.slow {
			conn.Write(c.body)
			return
		}
		for i := range c.body {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
			if _, err := conn.Write(c.body[i : i+1]); err != nil {
				return
			}
		}
	}()
	conn.SetReadDeadline(time.Now().Add(p.timeout))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return probeResult{status: fmt.Sprintf("no answer in %s", p.timeout), why: "hang"}
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET):
		// Closed (or reset, when the server left the request unread)
		// without an answer.
		return probeResult{status: "empty reply", why: "the connection closed without an answer"}
	case err != nil:
		return probeResult{status: "no answer", why: err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return judge(c, resp.StatusCode, resp.Header.Get("Content-Type"), body)
}

// judge decides on one answer: a 4xx, the one the case wants, naming the
// field it wants, is ok; anything else fails.
func judge(c probeCase, code int, ctype string, body []byte) probeResult {
	var got struct{ Error, Field string }
	isJSON := strings.HasPrefix(ctype, "application/json") && json.Unmarshal(body, &got) == nil
	r := probeResult{status: fmt.Sprint(code)}
	if got.Field != "" {
		r.status += " " + got.Field
	}
	switch {
	case code >= 500:
		r.why = "a server error for bad input"
	case code < 400:
		r.why = "hostile input accepted"
	case c.wantCode != 0 && code != c.wantCode:
		r.why = fmt.Sprintf("want %d", c.wantCode)
	case c.wantField != "" && (!isJSON || got.Field != c.wantField || got.Error == ""):
		r.why = fmt.Sprintf("want a JSON error naming %s", c.wantField)
	default:
		r.ok = true
	}
	return r
}

// normalOrder places a good order and follows it until it is in_transit
// (or delivered); it fails on failed, cancelled, or after wait.
func (p *prober) normalOrder(ctx context.Context, wait time.Duration) (id, status string, took time.Duration, err error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	cl := &http.Client{Timeout: p.timeout}
	key := fmt.Sprintf("probe-%d", start.UnixNano())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.urls.orders+order.PathOrders, strings.NewReader(probeGood))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(web.HeaderIdempotencyKey, key)
	req.Header.Set(web.HeaderCorrelationID, key)
	resp, err := cl.Do(req)
	if err != nil {
		return "", "", 0, fmt.Errorf("place: %w", err)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	var created order.CreateResponse
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &created) != nil || created.OrderID == "" {
		return "", "", 0, fmt.Errorf("place: %d %s, want 202 with an order id", resp.StatusCode, bytes.TrimSpace(b))
	}
	id = created.OrderID
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.urls.orders+web.Path(order.PathOrder, id), nil)
		req.Header.Set("Authorization", "Bearer "+p.token)
		if resp, err := cl.Do(req); err == nil {
			var o order.Order
			json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&o)
			resp.Body.Close()
			status = o.Status
			switch o.Status {
			case order.StatusInTransit, order.StatusDelivered:
				return id, status, time.Since(start), nil
			case order.StatusFailed, order.StatusCancelled:
				return id, status, 0, fmt.Errorf("ended %s (%s), want in_transit", o.Status, o.FailureReason)
			}
		}
		select {
		case <-ctx.Done():
			return id, status, 0, fmt.Errorf("still %q after %s, want in_transit", status, wait)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
