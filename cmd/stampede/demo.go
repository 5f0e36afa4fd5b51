package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/order"
	"github.com/stampede-dev/stampede/platform/shipping"
	"github.com/stampede-dev/stampede/platform/web"
)

// demoOrder is one sample order and the outcome its input implies.
type demoOrder struct {
	label, expect string
	token, sku    string
	country       string
	final         string // the status the saga must rest in
}

var demoOrders = []demoOrder{
	{"a happy order", "delivered (the demo confirms its delivery)", "tok_visa", "SKU-00001", "US", order.StatusDelivered},
	{"a second happy order", "in_transit (waits for delivery)", "tok_visa", "SKU-00042", "GB", order.StatusInTransit},
	{"a declined card", "failed: card declined, stock released", "tok_declined", "SKU-00007", "US", order.StatusFailed},
	{"an out-of-stock SKU", "failed: out of stock", "tok_visa", "SKU-OOS", "US", order.StatusFailed},
	{"an undeliverable address", "failed: undeliverable, charge refunded", "tok_visa", "SKU-00003", "XX", order.StatusFailed},
}

func runDemo(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede demo", `Place a handful of sample orders on the running stack (one per outcome: happy,
declined, out of stock, undeliverable), follow them through the saga, and print where
to look: ports, the Temporal Web UI, and how to watch the topics. Run by `+"`make demo`"+`
after `+"`make up`"+`.`)
	var wait time.Duration
	fs.DurationVar(&wait, "wait", "STAMPEDE_DEMO_WAIT", 60*time.Second, "how long to follow the orders")
	if err := fs.Parse(args); err != nil {
		return err
	}
	base := config.ServiceURL(config.Orders)
	// Orders are placed anonymously, as a shop's customers do; reading them
	// and confirming a delivery takes the stack's service token.
	hc, err := web.ServiceClient(nil)
	if err != nil {
		return err
	}
	fmt.Printf("Placing %d sample orders on %s ...\n", len(demoOrders), base)
	ids := make([]string, len(demoOrders))
	for i, d := range demoOrders {
		id, err := placeDemoOrder(ctx, base, i, d)
		if err != nil {
			return fmt.Errorf("place %s: %w", d.label, err)
		}
		ids[i] = id
		fmt.Printf("  %-26s %s\n", d.label, id)
	}

	fmt.Printf("\nFollowing them through the saga (up to %s):\n", wait)
	deadline := time.Now().Add(wait)
	statuses, err := followDemoOrders(ctx, hc, base, ids, deadline, func(i int, o order.Order) bool {
		return order.Terminal(o.Status) || o.Status == order.StatusInTransit
	})
	if err != nil {
		return err
	}
	// The delivery confirmation reaches the workflow as a signal: confirm the
	// first order's shipment and watch it become delivered.
	if statuses[0].Status == order.StatusInTransit {
		ship, err := confirmDemoDelivery(ctx, hc, ids[0])
		if err != nil {
			return fmt.Errorf("confirm delivery of %s: %w", ids[0], err)
		}
		fmt.Printf("  confirmed delivery of shipment %s (POST %s/v1/shipments/%s/deliver)\n", ship, config.ServiceURL(config.Shipping), ship)
		statuses, err = followDemoOrders(ctx, hc, base, ids, deadline, func(i int, o order.Order) bool {
			return o.Status == demoOrders[i].final || order.Terminal(o.Status)
		})
		if err != nil {
			return err
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ORDER\tSTATUS\tEXPECTED\tHISTORY")
	stuck := 0
	for i, o := range statuses {
		var steps []string
		for _, h := range o.History {
			steps = append(steps, h.Status)
		}
		status := o.Status
		if o.FailureReason != "" {
			status += " (" + o.FailureReason + ")"
		}
		if o.Status != demoOrders[i].final {
			stuck++
			status += "  <- expected " + demoOrders[i].final
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", demoOrders[i].label, status, demoOrders[i].expect, strings.Join(steps, " > "))
	}
	tw.Flush()

	fmt.Printf(`
Where to look (internal services and reads take a token: see README, Security):
  Orders API         %[1]s/v1/orders/%[2]s
                     curl -H "Authorization: Bearer $(bin/stampede token user u-1)" %[1]s/v1/orders/%[2]s
  Temporal Web UI    http://%[3]s/namespaces/default/workflows/order-%[2]s
                     (search: OrderId = "%[2]s")
  Notifications      %[10]s/v1/notifications?orderId=%[2]s
  Analytics          .stampede/data/analytics/failed-orders.jsonl (failed orders), topic analytics.high-value
  Prometheus         http://%[11]s   (dashboards: dashboards/*.json, docs/observability.md)
  toxiproxy API      http://%[4]s/proxies   (payments: %[5]s -> %[6]s)
  Kafka              %[7]s   e.g. kcat -b %[7]s -C -t orders -X isolation.level=read_committed -f '%%k %%h\n%%s\n\n'
  PostgreSQL         %[8]s   (password: %[12]s)
  Redis              %[9]s   (password: %[13]s)
  Logs               .stampede/logs/NAME.log   (stampede logs NAME -f)

Place your own:
  curl -si -X POST %[1]s/v1/orders -H 'Content-Type: application/json' -H 'Idempotency-Key: my-first-order' \
    -d '{"userId":"u-1","currency":"USD","items":[{"sku":"SKU-00001","qty":2,"priceCents":1999}],"shippingAddress":{"name":"Ada","line1":"1 Main St","city":"Springfield","postalCode":"12345","country":"US"},"payment":{"method":"card","token":"tok_visa"}}'
`, base, ids[0], config.Addr(config.TemporalUI), config.Addr(config.Toxiproxy), config.Addr(config.PaymentsProxy),
		config.Addr(config.Payments), strings.Join(config.KafkaBrokers(), ","), config.RedactURL(config.PostgresURL()), config.RedactURL(config.RedisURL()),
		config.ServiceURL(config.Notifications), config.Addr(config.Prometheus),
		config.SecretPath(config.SecretPostgresPassword), config.SecretPath(config.SecretRedisPassword))
	if stuck > 0 {
		return fmt.Errorf("%d of %d sample orders did not end as expected within %s: check `stampede status` and `stampede logs worker-1`", stuck, len(ids), wait)
	}
	return nil
}

func placeDemoOrder(ctx context.Context, base string, i int, d demoOrder) (string, error) {
	postal := "12345"
	body, _ := json.Marshal(map[string]any{
		"userId":   fmt.Sprintf("u-%d", i+1),
		"currency": "USD",
		"items":    []map[string]any{{"sku": d.sku, "qty": 1 + i%3, "priceCents": 1999 + 1000*i}},
		"shippingAddress": map[string]any{"name": "Demo Customer", "line1": fmt.Sprintf("%d Main St", i+1),
			"city": "Springfield", "postalCode": postal, "country": d.country},
		"payment": map[string]any{"method": "card", "token": d.token},
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+order.PathOrders, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("POST /v1/orders answered %d: %s", resp.StatusCode, b)
	}
	var r order.CreateResponse
	if err := json.Unmarshal(b, &r); err != nil {
		return "", err
	}
	return r.OrderID, nil
}

func getDemoOrder(ctx context.Context, hc *http.Client, base, id string) (order.Order, error) {
	var o order.Order
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+web.Path(order.PathOrder, id), nil)
	resp, err := hc.Do(req)
	if err != nil {
		return o, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return o, fmt.Errorf("GET /v1/orders/%s answered %d", id, resp.StatusCode)
	}
	return o, json.NewDecoder(resp.Body).Decode(&o)
}

// followDemoOrders polls the orders until done says each is where it should
// be, or the deadline passes, and returns their last state.
func followDemoOrders(ctx context.Context, hc *http.Client, base string, ids []string, deadline time.Time, done func(int, order.Order) bool) ([]order.Order, error) {
	statuses := make([]order.Order, len(ids))
	for {
		settled := 0
		for i, id := range ids {
			o, err := getDemoOrder(ctx, hc, base, id)
			if err != nil {
				return nil, err
			}
			statuses[i] = o
			if done(i, o) {
				settled++
			}
		}
		if settled == len(ids) || time.Now().After(deadline) || ctx.Err() != nil {
			return statuses, nil
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// confirmDemoDelivery marks the order's shipment delivered at the Shipping
// service, as a carrier would, and returns the shipment id.
func confirmDemoDelivery(ctx context.Context, hc *http.Client, orderID string) (string, error) {
	ship := config.ServiceURL(config.Shipping)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ship+shipping.PathShipments+"?orderId="+url.QueryEscape(orderID), nil)
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	var list struct {
		Shipments []struct{ ShipmentID string } `json:"shipments"`
	}
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil || len(list.Shipments) == 0 {
		return "", fmt.Errorf("no shipment found for the order (%v)", err)
	}
	id := list.Shipments[0].ShipmentID
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, ship+web.Path(shipping.PathDeliver, id), nil)
	resp, err = hc.Do(req)
	if err != nil {
		return "", err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("deliver answered %d: %s", resp.StatusCode, b)
	}
	return id, nil
}
