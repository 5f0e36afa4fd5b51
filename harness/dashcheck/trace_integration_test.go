//go:build integration

package dashcheck

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/stampede-dev/stampede/harness/stack"
	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/stacktest"
	"github.com/stampede-dev/stampede/platform/web"
)

// traced are the services a successful order passes through before it
// ships, each of which must log at least one line carrying its correlation
// id. Notifications logs only failed sends, so it is not in the list.
var traced = []string{"orders", "orchestrator", "worker", "inventory", "payments", "shipping"}

// TestOneOrderFollowedByItsCorrelationID places one order with its own
// X-Correlation-ID, waits until it has shipped, then finds that id in the
// JSON log lines of every service the order touched (as docs/observability.md
// tells users to), and the workflow in Temporal's visibility by OrderId.
func TestOneOrderFollowedByItsCorrelationID(t *testing.T) {
	root := stacktest.Root(t)
	inStack := map[string]bool{}
	for _, n := range stack.New(stack.Options{Orchestrators: 1, Workers: 1}).Names() {
		inStack[strings.SplitN(n, "-", 2)[0]] = true
	}
	var want []string
	for _, s := range traced {
		if inStack[s] {
			want = append(want, s)
		}
	}
	if !inStack["orchestrator"] || !inStack["worker"] {
		t.Fatalf("the stack has no orchestrator or worker: no saga would run (components: %v)", inStack)
	}

	cid := fmt.Sprintf("trace-%d", time.Now().UnixNano())
	body := `{"userId":"u-trace","currency":"USD","items":[{"sku":"SKU-00001","qty":1,"priceCents":1999}],
 "shippingAddress":{"name":"Ada","line1":"1 Main St","city":"Springfield","postalCode":"12345","country":"US"},
 "payment":{"method":"card","token":"tok_visa"}}`
	req, _ := http.NewRequest(http.MethodPost, stacktest.URL(config.Orders)+"/v1/orders", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(web.HeaderCorrelationID, cid)
	req.Header.Set(web.HeaderIdempotencyKey, cid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/orders: %v", err)
	}
	var created struct {
		OrderID string `json:"orderId"`
	}
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || created.OrderID == "" {
		t.Fatalf("POST /v1/orders: %d, order %q; want 202 and an id", resp.StatusCode, created.OrderID)
	}
	if got := resp.Header.Get(web.HeaderCorrelationID); got != cid {
		t.Errorf("response %s = %q, want %q", web.HeaderCorrelationID, got, cid)
	}

	// Shipped (or later): every service in the list has done its part.
	status := ""
	deadline := time.Now().Add(150 * time.Second) // generous: the shared stack may be under load
	for time.Now().Before(deadline) {
		status = orderStatus(t, created.OrderID)
		if status == "shipped" || status == "in_transit" || status == "delivered" || status == "failed" || status == "cancelled" {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if status != "shipped" && status != "in_transit" && status != "delivered" {
		t.Fatalf("order %s is %q after 150s, want shipped or later", created.OrderID, status)
	}

	// The log lines: the services that wrote one with the correlation id.
	var seen map[string]int
	deadline = time.Now().Add(15 * time.Second) // log lines of the last hop may trail the status
	for {
		seen = linesWith(t, filepath.Join(root, ".stampede", "logs"), cid)
		missing := 0
		for _, s := range want {
			if seen[s] == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	for _, s := range want {
		if seen[s] == 0 {
			t.Errorf("no log line of %s carries correlation_id %q (services that logged it: %v)", s, cid, seen)
		}
	}
	t.Logf("order %s (%s): log lines per service %v", created.OrderID, cid, seen)

	// Temporal: the workflow is found by its OrderId search attribute.
	c, err := client.Dial(client.Options{HostPort: config.TemporalAddress(), Namespace: config.TemporalNamespace()})
	if err != nil {
		t.Fatalf("dial temporal: %v", err)
	}
	defer c.Close()
	query := fmt.Sprintf("OrderId = %q", created.OrderID)
	var ids []string
	deadline = time.Now().Add(30 * time.Second) // visibility is eventually consistent
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		list, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		cancel()
		if err != nil {
			t.Fatalf("list workflows %s: %v", query, err)
		}
		ids = ids[:0]
		for _, e := range list.Executions {
			ids = append(ids, e.Execution.WorkflowId)
		}
		if len(ids) > 0 {
			break
		}
		time.Sleep(time.Second)
	}
	if want := "order-" + created.OrderID; len(ids) != 1 || ids[0] != want {
		t.Errorf("Temporal visibility %s: %v, want [%s]", query, ids, want)
	}
}

func orderStatus(t *testing.T, id string) string {
	t.Helper()
	resp, err := http.Get(stacktest.URL(config.Orders) + "/v1/orders/" + id)
	if err != nil {
		t.Fatalf("GET order: %v", err)
	}
	defer resp.Body.Close()
	var o struct {
		Status string `json:"status"`
	}
	json.NewDecoder(resp.Body).Decode(&o)
	return o.Status
}

// linesWith counts, per service field, the JSON log lines whose
// correlation_id is cid.
func linesWith(t *testing.T, dir, cid string) map[string]int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no logs in %s: %v", dir, err)
	}
	sort.Strings(files)
	seen := map[string]int{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if !strings.Contains(string(line), cid) {
				continue
			}
			var l struct {
				Service       string `json:"service"`
				CorrelationID string `json:"correlation_id"`
			}
			if json.Unmarshal(line, &l) == nil && l.CorrelationID == cid {
				seen[l.Service]++
			}
		}
		fh.Close()
	}
	return seen
}
