// Package restchain is the "before" system Stampede replaced, kept as the
// chaos harness's baseline (stampede chaos --platform rest): the Orders API
// calls Inventory, then Payments, then Shipping synchronously inside the
// request, with no outbox, no saga, no retry and no compensation.
//
// It exists so the audit can prove it sees what such a system does under
// the same faults (orders lost, half done: stock held and nothing charged,
// money taken and nothing shipped). It must never be used as the platform.
package restchain

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/stampede-dev/stampede/platform/inventory"
	"github.com/stampede-dev/stampede/platform/order"
	"github.com/stampede-dev/stampede/platform/payment"
	"github.com/stampede-dev/stampede/platform/shipping"
	"github.com/stampede-dev/stampede/platform/web"
)

// Env selects the chain for the Orders process (stampede serve orders).
const Env = "STAMPEDE_ORDERS_CHAIN"

// Mode is Env's value that turns the chain on.
const Mode = "rest"

// Chain calls the three services for one order.
type Chain struct {
	InventoryURL, PaymentsURL, ShippingURL string
	HTTP                                   *http.Client
	// Timeout bounds each call; default 5 s.
	Timeout time.Duration
}

// Run reserves, charges and ships the order, in that order, stopping at the
// first step that fails. A business refusal (out of stock, declined,
// undeliverable) is the order's failure: status failed and its reason, and
// nothing done before it is undone. Any other failure is returned as an
// error: the order stays as far as it got.
func (c *Chain) Run(ctx context.Context, orderID string, req order.CreateRequest, cid string) (status, reason string, err error) {
	var items []inventory.Item
	for _, it := range req.Items {
		items = append(items, inventory.Item{SKU: it.SKU, Qty: it.Qty})
	}
	if reason, err := c.post(ctx, c.InventoryURL+inventory.PathReservations, orderID+":reserve", cid,
		inventory.ReserveRequest{OrderID: orderID, Items: items}, http.StatusConflict); reason != "" || err != nil {
		return order.StatusFailed, reason, err
	}
	if reason, err := c.post(ctx, c.PaymentsURL+payment.PathCharges, orderID+":charge", cid,
		payment.ChargeRequest{OrderID: orderID, AmountCents: req.Total(), Currency: req.Currency, Token: req.Payment.Token},
		http.StatusPaymentRequired); reason != "" || err != nil {
		return order.StatusFailed, reason, err
	}
	ship := shipping.CreateRequest{OrderID: orderID, Address: shipping.Address(req.ShippingAddress)}
	for _, it := range req.Items {
		ship.Items = append(ship.Items, shipping.Item{SKU: it.SKU, Qty: it.Qty, PriceCents: it.PriceCents})
	}
	if reason, err := c.post(ctx, c.ShippingURL+shipping.PathShipments, orderID+":ship", cid, ship,
		http.StatusUnprocessableEntity); reason != "" || err != nil {
		return order.StatusFailed, reason, err
	}
	return order.StatusInTransit, "", nil
}

// post sends one step; an answer with status refused is the order's
// business failure (its error code is the reason).
func (c *Chain) post(ctx context.Context, url, key, cid string, body any, refused int) (string, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	b, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(web.HeaderIdempotencyKey, key)
	if cid != "" {
		req.Header.Set(web.HeaderCorrelationID, cid)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return "", nil
	case resp.StatusCode == refused:
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		if e.Error == "" {
			e.Error = http.StatusText(refused)
		}
		return e.Error, nil
	}
	return "", fmt.Errorf("POST %s: HTTP %d: %s", url, resp.StatusCode, bytes.TrimSpace(raw))
}
