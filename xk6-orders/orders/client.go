package orders

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/grafana/sobek"
	"gopkg.in/guregu/null.v3"

	"go.k6.io/k6/js/common"
	"go.k6.io/k6/js/modules"
	"go.k6.io/k6/lib"
	"go.k6.io/k6/lib/netext/httpext"
	"go.k6.io/k6/metrics"
)

// Statuses an order goes through, as the Orders API names them. The
// platform owns them (platform/order); this module cannot import it, so it
// keeps this copy and TestStatusesMatchOpenAPI checks it against the
// Status enum of platform/order/openapi.yaml.
var Statuses = []string{
	"pending", "processing", "reserving_inventory", "charging_payment", "creating_shipment",
	"shipped", "in_transit", "delivered", "compensating", "failed", "cancelled",
}

// StatusConfirmed is where the saga goes only after stock is reserved and
// payment captured: the first history entry with it marks "confirmed".
const StatusConfirmed = "creating_shipment"

func terminal(s string) bool { return s == "delivered" || s == "failed" || s == "cancelled" }

// Limits the Orders API enforces on headers.
const (
	maxIdempotencyKey = 255
	maxCorrelationID  = 128
)

// Client places orders on one Orders API and records each placement.
type Client struct {
	vu         modules.VU
	metrics    *orderMetrics
	ledgers    *ledgers
	baseURL    string
	ledgerPath string
	timeout    time.Duration
	pollEvery  time.Duration
	// token is the bearer sent on reads (status, waitFor): the Orders API
	// lets anyone place an order, but reading one takes the user's token
	// or the service token. Placing never sends it.
	token string
}

// newClient is the JS constructor: new orders.Client({baseUrl, ledger, timeout, pollInterval, token | tokenFile}).
func (mi *ModuleInstance) newClient(call sobek.ConstructorCall) *sobek.Object {
	rt := mi.vu.Runtime()
	c, err := mi.clientFrom(call.Argument(0))
	if err != nil {
		common.Throw(rt, err)
	}
	return rt.ToValue(c).ToObject(rt)
}

func (mi *ModuleInstance) clientFrom(v sobek.Value) (*Client, error) {
	o, err := newOptions("orders.Client", v, "baseUrl", "ledger", "timeout", "pollInterval", "token", "tokenFile")
	if err != nil {
		return nil, err
	}
	c := &Client{vu: mi.vu, metrics: mi.metrics, ledgers: &mi.root.ledgers}
	if !o.has("baseUrl") {
		return nil, o.errorf("baseUrl", "required, e.g. \"http://127.0.0.1:8080\"")
	}
	base, err := o.str("baseUrl", "")
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, o.errorf("baseUrl", "want an http(s) URL like \"http://127.0.0.1:8080\", got %q", base)
	}
	c.baseURL = strings.TrimRight(base, "/")
	if c.ledgerPath, err = o.str("ledger", ""); err != nil {
		return nil, err
	}
	if c.timeout, err = o.duration("timeout", 10*time.Second); err != nil {
		return nil, err
	}
	if c.pollEvery, err = o.duration("pollInterval", 250*time.Millisecond); err != nil {
		return nil, err
	}
	if c.token, err = tokenOption(o); err != nil {
		return nil, err
	}
	return c, nil
}

// tokenOption reads token, or the file tokenFile names (read here, in Go,
// so it never lands in a k6 archive as open() would put it).
func tokenOption(o *options) (string, error) {
	tok, err := o.str("token", "")
	if err != nil {
		return "", err
	}
	path, err := o.str("tokenFile", "")
	if err != nil {
		return "", err
	}
	switch {
	case tok != "" && path != "":
		return "", o.errorf("tokenFile", "give token or tokenFile, not both")
	case path != "":
		b, err := os.ReadFile(path)
		if err != nil {
			return "", o.errorf("tokenFile", "%v", err)
		}
		if tok = strings.TrimSpace(string(b)); tok == "" {
			return "", o.errorf("tokenFile", "%s is empty", path)
		}
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", o.errorf("token", "must be one word")
	}
	return tok, nil
}

// readHeader is the header of a read: the bearer when the client has one.
func (c *Client) readHeader() http.Header {
	h := http.Header{}
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	return h
}

// placement is what place() needs from an order object.
type placement struct {
	body       []byte
	key        string
	expect     string
	userID     string
	totalCents int64
	items      []LedgerItem
}

// apiFields are the keys of an order object that form the request body;
// the rest (expect, idempotencyKey...) are the harness's own.
var apiFields = []string{"userId", "currency", "items", "shippingAddress", "payment"}

func placementFrom(v sobek.Value) (placement, error) {
	var p placement
	if v == nil || sobek.IsUndefined(v) || sobek.IsNull(v) {
		return p, errors.New("orders.Client.place: want an order object, e.g. from orders.generate()")
	}
	obj, ok := v.Export().(map[string]any)
	if !ok {
		return p, fmt.Errorf("orders.Client.place: want an order object, got %s", describe(v.Export()))
	}
	str := func(name string) (string, error) {
		x, ok := obj[name]
		if !ok || x == nil {
			return "", nil
		}
		s, ok := x.(string)
		if !ok {
			return "", fmt.Errorf("orders.Client.place: order.%s: want a string, got %s", name, describe(x))
		}
		return s, nil
	}
	var err error
	if p.key, err = str("idempotencyKey"); err != nil {
		return p, err
	}
	if len(p.key) > maxIdempotencyKey {
		return p, fmt.Errorf("orders.Client.place: order.idempotencyKey: at most %d characters, got %d", maxIdempotencyKey, len(p.key))
	}
	if p.key == "" {
		// Without a key a retry could place the order twice; make one up.
		var b [16]byte
		_, _ = rand.Read(b[:])
		p.key = "k6-" + hex.EncodeToString(b[:])
	}
	if p.expect, err = str("expect"); err != nil {
		return p, err
	}
	if p.userID, err = str("userId"); err != nil {
		return p, err
	}
	if t, ok := toFloat(obj["totalCents"]); ok {
		p.totalCents = int64(t)
	}
	if items, ok := ledgerItems(obj["items"]); ok {
		// What is asked is what is sent: the total of the lines in the body.
		p.items, p.totalCents = items, 0
		for _, it := range items {
			p.totalCents += it.Qty * it.PriceCents
		}
	}
	body := make(map[string]any, len(apiFields))
	for _, k := range apiFields {
		if x, ok := obj[k]; ok {
			body[k] = x
		}
	}
	if p.body, err = json.Marshal(body); err != nil {
		return p, fmt.Errorf("orders.Client.place: encode order: %w", err)
	}
	return p, nil
}

// ledgerItems reads the order's lines (sku, qty, priceCents) as the body
// carries them; ok is false when they are not in that shape.
func ledgerItems(v any) ([]LedgerItem, bool) {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil, false
	}
	out := make([]LedgerItem, 0, len(list))
	for _, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, false
		}
		sku, _ := m["sku"].(string)
		qty, ok1 := toFloat(m["qty"])
		price, ok2 := toFloat(m["priceCents"])
		if sku == "" || !ok1 || !ok2 {
			return nil, false
		}
		out = append(out, LedgerItem{SKU: sku, Qty: int64(qty), PriceCents: int64(price)})
	}
	return out, true
}

// reply is one HTTP exchange; code 0 means no response (network error, timeout).
type reply struct {
	code int
	body []byte
	err  string
}

func statusIn(lo, hi int) func(int) bool {
	return func(code int) bool { return code >= lo && code <= hi }
}

// do sends one request through k6's HTTP stack, so it shows up in the
// http_req_* metrics (tagged like the VU, plus tags) and obeys k6's options.
func (c *Client) do(
	ctx context.Context, state *lib.State, method, target, name string,
	body []byte, header http.Header, tm metrics.TagsAndMeta, expected func(int) bool,
) reply {
	u, err := httpext.NewURL(target, name)
	if err != nil {
		return reply{err: err.Error()}
	}
	req, err := http.NewRequest(method, target, nil) //nolint:noctx // MakeRequest sets the context
	if err != nil {
		return reply{err: err.Error()}
	}
	req.Header = header
	if ua := state.Options.UserAgent; ua.Valid && req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", ua.String)
	}
	tm.SetTag("name", name)
	preq := &httpext.ParsedHTTPRequest{
		URL:              &u,
		Req:              req,
		Timeout:          c.timeout,
		ResponseType:     httpext.ResponseTypeBinary,
		ResponseCallback: expected,
		Redirects:        null.IntFrom(0),
		TagsAndMeta:      tm,
	}
	if body != nil {
		preq.Body = bytes.NewBuffer(body)
	}
	resp, err := httpext.MakeRequest(ctx, state, preq)
	if err != nil {
		return reply{err: err.Error()}
	}
	r := reply{code: resp.Status, err: resp.Error}
	if b, ok := resp.Body.([]byte); ok {
		r.body = b
	}
	return r
}

// placed is the 202 body.
type placed struct {
	OrderID    string `json:"orderId"`
	Status     string `json:"status"`
	TotalCents int64  `json:"totalCents"`
}

// Place posts an order with its Idempotency-Key, retries once with the same
// key on a network error, writes one ledger line and returns
// {orderId, status, code, acceptMs, outcome, attempts, expect, idempotencyKey, userId, error}.
func (c *Client) Place(v sobek.Value) (map[string]any, error) {
	state := c.vu.State()
	if state == nil {
		return nil, errors.New("orders.Client.place: not allowed in the init context")
	}
	p, err := placementFrom(v)
	if err != nil {
		return nil, err
	}
	var lg *ledger
	if c.ledgerPath != "" {
		if lg, err = c.ledgers.open(c.ledgerPath); err != nil {
			return nil, fmt.Errorf("orders.Client.place: %w", err)
		}
	}
	ctx := c.vu.Context()
	tm := state.Tags.GetCurrentValues()
	if p.expect != "" {
		tm.SetTag("expect", p.expect)
	}
	header := http.Header{}
	header.Set("Content-Type", "application/json")
	header.Set("Idempotency-Key", p.key)
	if correlationIDOK(p.key) {
		// The key doubles as correlation id: the platform's logs for this
		// order then point straight at its ledger line. (The platform
		// refuses an id outside its charset with a 400; such a key is sent
		// without one.)
		header.Set("X-Correlation-ID", p.key)
	}

	sent := time.Now()
	var (
		r        reply
		attempts int
	)
	for attempts < 2 {
		attempts++
		r = c.do(ctx, state, http.MethodPost, c.baseURL+"/v1/orders", c.baseURL+"/v1/orders",
			p.body, header.Clone(), tm.Clone(), statusIn(200, 299))
		if r.code != 0 || ctx.Err() != nil {
			break
		}
	}
	done := time.Now()
	elapsed := done.Sub(sent)

	line := LedgerLine{
		IdempotencyKey: p.key,
		UserID:         p.userID,
		Expect:         p.expect,
		Code:           r.code,
		SentAt:         sent.UTC().Format(time.RFC3339Nano),
		Ms:             metrics.D(elapsed),
		Attempts:       attempts,
		Error:          r.err,
		TotalCents:     p.totalCents,
		Items:          p.items,
	}
	if s, ok := tm.Tags.Get("scenario"); ok {
		line.Scenario = s
	}
	var ack placed
	switch {
	case r.code >= 200 && r.code < 300:
		if err := json.Unmarshal(r.body, &ack); err != nil || ack.OrderID == "" {
			// The API said yes but we cannot tell which order: the
			// verifier must treat it as possibly existing.
			line.Outcome = OutcomeUnknown
			line.Error = fmt.Sprintf("2xx without an orderId: %.200q", r.body)
			break
		}
		line.Outcome = OutcomeAcked
		line.OrderID = ack.OrderID
		line.AcceptedAt = done.UTC().Format(time.RFC3339Nano)
		line.AckTotalCents = ack.TotalCents
	case r.code >= 400 && r.code < 500 && r.code != http.StatusConflict:
		line.Outcome = OutcomeRejected
		line.Error = apiError(r.body)
	default:
		// 0 (timeout, network error), 5xx, and 409: another request with
		// this key is still in flight and may yet create the order.
		line.Outcome = OutcomeUnknown
		if r.code != 0 {
			line.Error = apiError(r.body)
		}
	}

	c.pushPlacement(ctx, state, tm, line.Outcome, elapsed, done)
	if lg != nil {
		if err := lg.write(line); err != nil {
			return nil, fmt.Errorf("orders.Client.place: %w", err)
		}
	}
	return map[string]any{
		"orderId":        line.OrderID,
		"status":         ack.Status,
		"code":           line.Code,
		"acceptMs":       line.Ms,
		"outcome":        line.Outcome,
		"attempts":       attempts,
		"expect":         p.expect,
		"idempotencyKey": p.key,
		"userId":         p.userID,
		"totalCents":     line.TotalCents,
		"error":          line.Error,
	}, nil
}

func apiError(body []byte) string {
	var e struct {
		Error string `json:"error"`
		Field string `json:"field"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		if e.Field != "" {
			return e.Field + ": " + e.Error
		}
		return e.Error
	}
	if len(body) > 200 {
		body = body[:200]
	}
	return string(body)
}

// pushPlacement emits the counters and, for an ack, the accept duration.
// It runs on the VU goroutine.
func (c *Client) pushPlacement(ctx context.Context, state *lib.State, tm metrics.TagsAndMeta, outcome string, elapsed time.Duration, at time.Time) {
	counter := c.metrics.unknown
	switch outcome {
	case OutcomeAcked:
		counter = c.metrics.placed
	case OutcomeRejected:
		counter = c.metrics.rejected
	}
	samples := metrics.Samples{{
		TimeSeries: metrics.TimeSeries{Metric: counter, Tags: tm.Tags},
		Time:       at, Metadata: tm.Metadata, Value: 1,
	}}
	if outcome == OutcomeAcked {
		samples = append(samples, metrics.Sample{
			TimeSeries: metrics.TimeSeries{Metric: c.metrics.accept, Tags: tm.Tags},
			Time:       at, Metadata: tm.Metadata, Value: metrics.D(elapsed),
		})
	}
	metrics.PushIfNotDone(ctx, state.Samples, samples)
}

// HistoryEntry is one status change of an order.
type HistoryEntry struct {
	Status string `json:"status"`
	At     string `json:"at"`
}

// orderView is the part of GET /v1/orders/{id} the client reads.
type orderView struct {
	OrderID       string         `json:"orderId"`
	Status        string         `json:"status"`
	FailureReason string         `json:"failureReason"`
	CreatedAt     string         `json:"createdAt"`
	History       []HistoryEntry `json:"history"`
}

// confirmDuration is the server-side time from pending to the first
// creating_shipment entry; ok is false until the order got there.
func (o orderView) confirmDuration() (time.Duration, bool) {
	var pending, confirmed string
	for _, h := range o.History {
		if h.Status == "pending" && pending == "" {
			pending = h.At
		}
		if h.Status == StatusConfirmed && confirmed == "" {
			confirmed = h.At
		}
	}
	if pending == "" {
		pending = o.CreatedAt
	}
	if confirmed == "" || pending == "" {
		return 0, false
	}
	p, err1 := time.Parse(time.RFC3339Nano, pending)
	c, err2 := time.Parse(time.RFC3339Nano, confirmed)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return c.Sub(p), true
}

// reached reports whether the order is or has been in one of targets.
func (o orderView) reached(targets []string) bool {
	if slices.Contains(targets, o.Status) {
		return true
	}
	for _, h := range o.History {
		if slices.Contains(targets, h.Status) {
			return true
		}
	}
	return false
}

func (c *Client) orderURL(id string) (target, name string) {
	return c.baseURL + "/v1/orders/" + url.PathEscape(id), c.baseURL + "/v1/orders/{id}"
}

func checkOrderID(where, id string) error {
	if id == "" {
		return fmt.Errorf("%s: orderId: must not be empty", where)
	}
	return nil
}

// Status is GET /v1/orders/{id}: the order as the API returns it plus its
// HTTP code, or {code, error} when there is no order to show.
func (c *Client) Status(id string) (map[string]any, error) {
	state := c.vu.State()
	if state == nil {
		return nil, errors.New("orders.Client.status: not allowed in the init context")
	}
	if err := checkOrderID("orders.Client.status", id); err != nil {
		return nil, err
	}
	target, name := c.orderURL(id)
	r := c.do(c.vu.Context(), state, http.MethodGet, target, name, nil, c.readHeader(),
		state.Tags.GetCurrentValues(), statusIn(200, 200))
	if r.code != http.StatusOK {
		msg := r.err
		if r.code != 0 {
			msg = apiError(r.body)
		}
		return map[string]any{"code": r.code, "error": msg}, nil
	}
	var o map[string]any
	if err := json.Unmarshal(r.body, &o); err != nil {
		return map[string]any{"code": r.code, "error": "undecodable body: " + err.Error()}, nil
	}
	o["code"] = r.code
	return o, nil
}

// waitResult is what a waitFor settles with.
type waitResult struct {
	order   orderView
	reached bool
	polls   int
	waited  time.Duration
	err     error
}

// WaitFor polls the order until it has reached one of statuses (now or
// earlier in its history) or a terminal status, off the event loop, and
// returns a promise of {orderId, status, failureReason, reached, history,
// confirmMs, polls, waitedMs}. The promise is rejected on timeout, on an
// unknown order and when the test stops. order is an order id or place()'s
// result (whose expect then tags order_confirm_duration).
func (c *Client) WaitFor(order sobek.Value, statuses sobek.Value, timeout sobek.Value) (*sobek.Promise, error) {
	const where = "orders.Client.waitFor"
	state := c.vu.State()
	if state == nil {
		return nil, errors.New(where + ": not allowed in the init context")
	}
	id, expect, err := orderRef(where, order)
	if err != nil {
		return nil, err
	}
	targets, err := statusList(where, statuses)
	if err != nil {
		return nil, err
	}
	wait := 60 * time.Second
	if timeout != nil && !sobek.IsUndefined(timeout) && !sobek.IsNull(timeout) {
		if wait, err = parseDuration(timeout.Export()); err != nil {
			return nil, fmt.Errorf("%s: timeout: %w", where, err)
		}
	}

	tm := state.Tags.GetCurrentValues()
	if expect != "" {
		tm.SetTag("expect", expect)
	}
	ctx := c.vu.Context()
	rt := c.vu.Runtime()
	promise, resolve, reject := rt.NewPromise()
	callback := c.vu.RegisterCallback()
	go func() {
		res := c.poll(ctx, state, id, targets, wait, tm)
		callback(func() error {
			if res.err != nil {
				return reject(rt.NewGoError(res.err))
			}
			out := map[string]any{
				"orderId":       res.order.OrderID,
				"status":        res.order.Status,
				"failureReason": res.order.FailureReason,
				"reached":       res.reached,
				"history":       historyJS(res.order.History),
				"confirmMs":     nil,
				"polls":         res.polls,
				"waitedMs":      metrics.D(res.waited),
			}
			if d, ok := res.order.confirmDuration(); ok {
				out["confirmMs"] = metrics.D(d)
				// On the event loop, that is the VU goroutine: safe to push.
				if st := c.vu.State(); st != nil {
					metrics.PushIfNotDone(c.vu.Context(), st.Samples, metrics.Sample{
						TimeSeries: metrics.TimeSeries{Metric: c.metrics.confirm, Tags: tm.Tags},
						Time:       time.Now(), Metadata: tm.Metadata, Value: metrics.D(d),
					})
				}
			}
			return resolve(rt.ToValue(out))
		})
	}()
	return promise, nil
}

func historyJS(h []HistoryEntry) []any {
	out := make([]any, len(h))
	for i, e := range h {
		out[i] = map[string]any{"status": e.Status, "at": e.At}
	}
	return out
}

// poll runs off the event loop; it only touches the network, the clock and
// k6's HTTP stack (which may push samples from any goroutine).
func (c *Client) poll(ctx context.Context, state *lib.State, id string, targets []string, wait time.Duration, tm metrics.TagsAndMeta) waitResult {
	start := time.Now()
	deadline := start.Add(wait)
	target, name := c.orderURL(id)
	var (
		res  waitResult
		last = "(no answer yet)"
	)
	for {
		res.polls++
		// No response callback: a failed poll is retried, so it must not
		// count in http_req_failed; whether the wait settled is what counts.
		r := c.do(ctx, state, http.MethodGet, target, name, nil, c.readHeader(), tm.Clone(), nil)
		switch {
		case r.code == http.StatusOK:
			var o orderView
			if err := json.Unmarshal(r.body, &o); err != nil {
				last = "(undecodable answer)"
				break
			}
			res.order, last = o, fmt.Sprintf("status %q", o.Status)
			if res.reached = o.reached(targets); res.reached || terminal(o.Status) {
				res.waited = time.Since(start)
				return res
			}
		case r.code == http.StatusNotFound:
			res.err = fmt.Errorf("waitFor %s: no such order (404)", id)
			return res
		case r.code >= 400 && r.code < 500:
			res.err = fmt.Errorf("waitFor %s: HTTP %d: %s", id, r.code, apiError(r.body))
			return res
		case r.code == 0:
			last = "(no answer: " + r.err + ")"
		default:
			last = fmt.Sprintf("(HTTP %d)", r.code)
		}
		left := time.Until(deadline)
		if left <= 0 {
			res.err = fmt.Errorf("waitFor %s: timed out after %v waiting for %s; last %s",
				id, wait, strings.Join(targets, "|"), last)
			return res
		}
		t := time.NewTimer(min(c.pollEvery, left))
		select {
		case <-ctx.Done():
			t.Stop()
			res.err = fmt.Errorf("waitFor %s: %w", id, ctx.Err())
			return res
		case <-t.C:
		}
	}
}

// orderRef reads an order id, or the id and expect of a place() result.
func orderRef(where string, v sobek.Value) (id, expect string, err error) {
	if v == nil || sobek.IsUndefined(v) || sobek.IsNull(v) {
		return "", "", fmt.Errorf("%s: orderId: required (an id or place()'s result)", where)
	}
	switch x := v.Export().(type) {
	case string:
		id = x
	case map[string]any:
		id, _ = x["orderId"].(string)
		expect, _ = x["expect"].(string)
	default:
		return "", "", fmt.Errorf("%s: orderId: want a string or place()'s result, got %s", where, describe(x))
	}
	return id, expect, checkOrderID(where, id)
}

func statusList(where string, v sobek.Value) ([]string, error) {
	if v == nil || sobek.IsUndefined(v) || sobek.IsNull(v) {
		return nil, fmt.Errorf("%s: statuses: required, e.g. [%q]", where, StatusConfirmed)
	}
	var raw []any
	switch x := v.Export().(type) {
	case string:
		raw = []any{x}
	case []any:
		raw = x
	default:
		return nil, fmt.Errorf("%s: statuses: want an array of statuses, got %s", where, describe(x))
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("%s: statuses: must not be empty", where)
	}
	out := make([]string, 0, len(raw))
	for _, s := range raw {
		str, ok := s.(string)
		if !ok || !slices.Contains(Statuses, str) {
			return nil, fmt.Errorf("%s: statuses: unknown status %v (known: %s)", where, s, strings.Join(Statuses, ", "))
		}
		out = append(out, str)
	}
	return out, nil
}

// correlationIDOK mirrors the platform's rule for X-Correlation-ID (see
// platform/order/openapi.yaml): 1 to 128 letters, digits and . _ : / @ + = -.
func correlationIDOK(s string) bool {
	if len(s) == 0 || len(s) > maxCorrelationID {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._:/@+=-", c) >= 0) {
			return false
		}
	}
	return true
}
