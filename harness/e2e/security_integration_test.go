//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/saga"
	"github.com/stampede-dev/stampede/platform/stacktest"
	"github.com/stampede-dev/stampede/platform/vault"
)

// answer is one HTTP exchange with the stack.
type answer struct {
	code   int
	body   string
	header http.Header
}

// call sends method url with body (JSON when not empty) and headers (name,
// value pairs) through c.
func call(t *testing.T, c *http.Client, method, url, body string, headers ...string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp.Header}
}

// refused fails t unless a is code with a JSON error naming field.
func refused(t *testing.T, what string, a answer, code int, field string) {
	t.Helper()
	var body struct{ Error, Field string }
	json.Unmarshal([]byte(a.body), &body)
	if a.code != code || body.Field != field {
		t.Errorf("%s: %d %s, want %d naming %q", what, a.code, strings.TrimSpace(a.body), code, field)
	}
}

func securityOrder(user, token string) string {
	b, _ := json.Marshal(map[string]any{
		"userId": user, "currency": "USD", "items": []map[string]any{{"sku": "SKU-00011", "qty": 1, "priceCents": 1500}},
		"shippingAddress": map[string]any{"name": "Sec", "line1": "1 Lock St", "city": "Keyville", "postalCode": "12345", "country": "US"},
		"payment":         map[string]any{"method": "card", "token": token},
	})
	return string(b)
}

// Nothing on the stack acts for an unauthenticated caller: every internal
// service refuses a request without the service token or with a wrong one
// (401 naming Authorization), and takes it with the token; readiness stays
// open and shows no secret.
func TestInternalServicesRequireTheServiceToken(t *testing.T) {
	tok := stacktest.ServiceToken(t)
	order := uuid.NewString()
	routes := []struct{ service, method, path string }{
		{config.Inventory, "GET", "/v1/reservations?orderId=" + order},
		{config.Inventory, "GET", "/v1/stock/SKU-00001"},
		{config.Inventory, "POST", "/v1/reservations/release?orderId=" + order},
		{config.Payments, "GET", "/v1/charges?orderId=" + order},
		{config.Payments, "POST", "/v1/refunds?orderId=" + order},
		{config.Shipping, "GET", "/v1/shipments?orderId=" + order},
		{config.Shipping, "POST", "/v1/shipments/cancel?orderId=" + order},
		{config.Notifications, "GET", "/v1/notifications?orderId=" + order},
		{config.Analytics, "GET", "/v1/rules"},
	}
	for _, r := range routes {
		url := stacktest.URL(r.service) + r.path
		what := r.service + " " + r.method + " " + r.path
		ct := []string{"Content-Type", "application/json"}
		a := call(t, stacktest.Anonymous, r.method, url, "", ct...)
		refused(t, what+" without a token", a, http.StatusUnauthorized, "Authorization")
		if a.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", what)
		}
		refused(t, what+" with a wrong token", call(t, stacktest.Anonymous, r.method, url, "", append(ct, "Authorization", "Bearer "+tok+"x")...), http.StatusUnauthorized, "Authorization")
		refused(t, what+" with a user token", call(t, stacktest.Anonymous, r.method, url, "", append(ct, "Authorization", "Bearer "+stacktest.UserToken(t, "u-1"))...), http.StatusUnauthorized, "Authorization")
		if a := call(t, stacktest.Anonymous, r.method, url, "", append(ct, "Authorization", "Bearer "+tok)...); a.code >= 400 {
			t.Errorf("%s with the service token: %d %s", what, a.code, a.body)
		}
		if strings.Contains(a.body, tok) {
			t.Errorf("%s: a refusal shows the token", what)
		}
	}
	for _, svc := range []string{config.Orders, config.Inventory, config.Payments, config.Shipping, config.Notifications, config.Analytics} {
		a := call(t, stacktest.Anonymous, "GET", stacktest.URL(svc)+"/readyz", "")
		if a.code != http.StatusOK {
			t.Errorf("%s /readyz without a token: %d %s", svc, a.code, a.body)
		}
	}
}

// Placing an order is anonymous; reading, listing and cancelling it take
// the user's token (that user's orders only) or the service token.
// Refunds, releases and deliveries are the service token's only.
func TestOrdersAPIAccess(t *testing.T) {
	orders := stacktest.URL(config.Orders)
	user := "u-sec-" + uuid.NewString()[:8]
	a := call(t, stacktest.Anonymous, "POST", orders+"/v1/orders", securityOrder(user, "tok_visa"), "Idempotency-Key", "sec-"+user)
	if a.code != http.StatusAccepted {
		t.Fatalf("anonymous POST /v1/orders: %d %s", a.code, a.body)
	}
	var placed struct{ OrderID string }
	json.Unmarshal([]byte(a.body), &placed)
	one := orders + "/v1/orders/" + placed.OrderID
	owner := "Bearer " + stacktest.UserToken(t, user)
	other := "Bearer " + stacktest.UserToken(t, "u-someone-else")
	service := "Bearer " + stacktest.ServiceToken(t)

	refused(t, "anonymous GET order", call(t, stacktest.Anonymous, "GET", one, ""), 401, "Authorization")
	refused(t, "anonymous GET list", call(t, stacktest.Anonymous, "GET", orders+"/v1/orders", ""), 401, "Authorization")
	refused(t, "anonymous cancel", call(t, stacktest.Anonymous, "POST", one+"/cancel", "", "Content-Type", "application/json"), 401, "Authorization")
	refused(t, "another user's GET", call(t, stacktest.Anonymous, "GET", one, "", "Authorization", other), 404, "id")
	refused(t, "another user's cancel", call(t, stacktest.Anonymous, "POST", one+"/cancel", "", "Authorization", other, "Content-Type", "application/json"), 404, "id")
	refused(t, "a forged user token", call(t, stacktest.Anonymous, "GET", one, "", "Authorization", owner+"x"), 401, "Authorization")
	for who, auth := range map[string]string{"owner": owner, "service": service} {
		if a := call(t, stacktest.Anonymous, "GET", one, "", "Authorization", auth); a.code != http.StatusOK || !strings.Contains(a.body, placed.OrderID) {
			t.Errorf("GET order as %s: %d %s", who, a.code, a.body)
		}
	}
	var list struct{ Orders []struct{ UserID string } }
	a = call(t, stacktest.Anonymous, "GET", orders+"/v1/orders?limit=1000", "", "Authorization", owner)
	json.Unmarshal([]byte(a.body), &list)
	if a.code != http.StatusOK || len(list.Orders) != 1 || list.Orders[0].UserID != user {
		t.Errorf("GET /v1/orders as the owner: %d, %d orders, want only the owner's one: %s", a.code, len(list.Orders), a.body)
	}
	// The owner may cancel (202, or 409 once the saga is past the point of no return).
	if a := call(t, stacktest.Anonymous, "POST", one+"/cancel", "", "Authorization", owner, "Content-Type", "application/json"); a.code != http.StatusAccepted && a.code != http.StatusConflict {
		t.Errorf("owner's cancel: %d %s", a.code, a.body)
	}
	// A user's token is nothing to the internal services.
	refund := stacktest.URL(config.Payments) + "/v1/refunds?orderId=" + placed.OrderID
	refused(t, "a user's refund", call(t, stacktest.Anonymous, "POST", refund, "", "Authorization", owner, "Content-Type", "application/json"), 401, "Authorization")
	deliver := stacktest.URL(config.Shipping) + "/v1/shipments/" + uuid.NewString() + "/deliver"
	refused(t, "a user's delivery", call(t, stacktest.Anonymous, "POST", deliver, "", "Authorization", owner, "Content-Type", "application/json"), 401, "Authorization")
}

// What a page on another origin could send is refused: a POST that is not
// JSON (a form, a body-less POST needs no CORS preflight), a Host the
// service does not answer to (DNS rebinding).
func TestBrowserOriginatedRequests(t *testing.T) {
	orders := stacktest.URL(config.Orders)
	service := "Bearer " + stacktest.ServiceToken(t)
	form := call(t, stacktest.Anonymous, "POST", orders+"/v1/orders", "", "Content-Type", "application/x-www-form-urlencoded")
	refused(t, "a form POST", form, http.StatusUnsupportedMediaType, "Content-Type")
	text := call(t, stacktest.Anonymous, "POST", orders+"/v1/orders", "", "Content-Type", "text/plain")
	refused(t, "a text/plain POST", text, http.StatusUnsupportedMediaType, "Content-Type")
	bodiless := call(t, stacktest.Anonymous, "POST", stacktest.URL(config.Payments)+"/v1/refunds?orderId="+uuid.NewString(), "", "Authorization", service)
	refused(t, "a body-less POST without a type, with the token", bodiless, http.StatusUnsupportedMediaType, "Content-Type")
	for _, svc := range []string{config.Orders, config.Inventory, config.Payments, config.Shipping, config.Notifications, config.Analytics} {
		a := call(t, stacktest.Anonymous, "GET", stacktest.URL(svc)+"/healthz", "", "Host", "attacker.example:"+fmt.Sprint(config.Port(svc)))
		refused(t, svc+" with a foreign Host", a, http.StatusMisdirectedRequest, "Host")
		if a := call(t, stacktest.Anonymous, "GET", stacktest.URL(svc)+"/healthz", "", "Host", fmt.Sprintf("localhost:%d", config.Port(svc))); a.code != http.StatusOK {
			t.Errorf("%s with Host localhost: %d %s", svc, a.code, a.body)
		}
	}
}

// The infrastructure the stack runs takes nobody's word either: PostgreSQL
// wants the password (SCRAM), Redis its requirepass; the toxiproxy API
// refuses a proxy beyond loopback; Prometheus has no lifecycle API.
func TestInfrastructureRefusesAnonymousCallers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	noPassword := fmt.Sprintf("postgres://postgres@%s/stampede?sslmode=disable", config.Addr(config.Postgres))
	if conn, err := pgx.Connect(ctx, noPassword); err == nil {
		conn.Close(ctx)
		t.Error("PostgreSQL let a client in without a password")
	}
	wrong := fmt.Sprintf("postgres://postgres:wrong@%s/stampede?sslmode=disable", config.Addr(config.Postgres))
	if conn, err := pgx.Connect(ctx, wrong); err == nil || !strings.Contains(err.Error(), "28P01") {
		if conn != nil {
			conn.Close(ctx)
		}
		t.Errorf("PostgreSQL with a wrong password: %v, want SQLSTATE 28P01", err)
	}
	if conn, err := pgx.Connect(ctx, config.PostgresURL()); err != nil {
		t.Errorf("PostgreSQL with the stack's password: %v", err)
	} else {
		var method string
		conn.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'").Scan(&method)
		if !strings.HasPrefix(method, "SCRAM-SHA-256$") {
			t.Errorf("postgres role's password is not a SCRAM verifier: %.14q", method)
		}
		var trust int
		conn.QueryRow(ctx, "SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust'").Scan(&trust)
		if trust != 0 {
			t.Errorf("pg_hba.conf still trusts %d rules", trust)
		}
		conn.Close(ctx)
	}

	anon := redis.NewClient(&redis.Options{Addr: config.Addr(config.Redis)})
	defer anon.Close()
	if err := anon.Set(ctx, "stampede:sec-test", "x", time.Second).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("Redis without the password: %v, want NOAUTH", err)
	}

	toxi := "http://" + config.Addr(config.Toxiproxy) + "/proxies"
	for _, listen := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		a := call(t, stacktest.Anonymous, "POST", toxi, fmt.Sprintf(`{"name":"sec-%d","listen":%q,"upstream":"127.0.0.1:1"}`, time.Now().UnixNano(), listen))
		refused(t, "toxiproxy proxy on "+listen, a, http.StatusBadRequest, "listen")
	}
	prom := "http://" + config.Addr(config.Prometheus)
	for _, path := range []string{"/-/quit", "/-/reload"} {
		if a := call(t, stacktest.Anonymous, "POST", prom+path, ""); a.code != http.StatusForbidden {
			t.Errorf("Prometheus POST %s: %d %s, want 403 (lifecycle API off)", path, a.code, a.body)
		}
	}
}

// The payment token goes into the vault; the outbox row, the Kafka record
// and the workflow's history carry its reference only, and the charge takes
// the token out of the vault.
func TestPaymentTokenStaysInTheVault(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	secret := "tok_sec_" + strings.ReplaceAll(uuid.NewString(), "-", "") // any token not declined captures
	cons := stacktest.Consumer(t, event.TopicOrders)
	user := "u-vault-" + uuid.NewString()[:8]
	a := call(t, stacktest.Anonymous, "POST", stacktest.URL(config.Orders)+"/v1/orders", securityOrder(user, secret), "Idempotency-Key", "vault-"+user)
	if a.code != http.StatusAccepted {
		t.Fatalf("POST /v1/orders: %d %s", a.code, a.body)
	}
	var placed struct{ OrderID string }
	json.Unmarshal([]byte(a.body), &placed)
	id := placed.OrderID

	// Kafka: the order.created record names a reference, not the token.
	recs := stacktest.Collect(cons, 20*time.Second, func(rs []*kgo.Record) bool {
		for _, r := range rs {
			if bytes.Contains(r.Value, []byte(id)) {
				return true
			}
		}
		return false
	})
	var ref string
	for _, r := range recs {
		if !bytes.Contains(r.Value, []byte(id)) {
			continue
		}
		if bytes.Contains(r.Value, []byte(secret)) {
			t.Errorf("the Kafka record of order.created holds the payment token: %s", r.Value)
		}
		env, _ := event.Decode(r.Value)
		oc, err := event.DecodeData[event.OrderCreated](env)
		if err == nil {
			ref = oc.Payment.Ref
		}
	}
	if !vault.ValidRef(ref) {
		t.Fatalf("no order.created record of %s with a vault reference (got %q among %d records)", id, ref, len(recs))
	}

	// The outbox row, sent or not, kept for an hour.
	db := stacktest.DB(t, "orders")
	var rows int
	var leaked bool
	err := db.QueryRow(ctx, `SELECT count(*), coalesce(bool_or(position($2::bytea in value) > 0), false) FROM outbox
		WHERE position($1::bytea in value) > 0`, []byte(id), []byte(secret)).Scan(&rows, &leaked)
	if err != nil || rows == 0 {
		t.Fatalf("outbox rows of %s: %d, %v", id, rows, err)
	}
	if leaked {
		t.Error("an outbox row holds the payment token")
	}

	// The saga charges with it (so the vault gave it to Payments) and the
	// vault forgets it.
	var status string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var o struct{ Status string }
		json.Unmarshal([]byte(call(t, http.DefaultClient, "GET", stacktest.URL(config.Orders)+"/v1/orders/"+id, "").body), &o)
		if status = o.Status; status == "in_transit" || status == "failed" || status == "delivered" {
			break
		}
	}
	if status != "in_transit" {
		t.Fatalf("order %s is %q, want in_transit (charged with the vault's token)", id, status)
	}
	var captured int
	stacktest.DB(t, "payments").QueryRow(ctx, "SELECT count(*) FROM charges WHERE order_id = $1 AND status = 'captured'", id).Scan(&captured)
	if captured != 1 {
		t.Errorf("captured charges of %s: %d, want 1", id, captured)
	}
	var left int
	db.QueryRow(ctx, "SELECT count(*) FROM vault.payment_tokens WHERE ref = $1 OR token = $2", ref, secret).Scan(&left)
	if left != 0 {
		t.Errorf("the vault still holds the token after the charge")
	}

	// Temporal: no event of the workflow's history holds it.
	c, err := client.DialContext(ctx, client.Options{HostPort: config.TemporalAddress(), Namespace: config.TemporalNamespace()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	it := c.GetWorkflowHistory(ctx, saga.WorkflowID(id), "", false, 0)
	n, sawRef := 0, false
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := proto.Marshal(ev)
		n++
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("history event %d (%s) holds the payment token", ev.GetEventId(), ev.GetEventType())
		}
		sawRef = sawRef || bytes.Contains(raw, []byte(ref))
	}
	if n == 0 || !sawRef {
		t.Fatalf("history of %s: %d events, reference seen %v: the check above looked at nothing", id, n, sawRef)
	}
}

// No secret appears in any log of the stack, in `stampede status`, or in
// what a service's /readyz answers.
func TestSecretsStayOutOfLogsAndStatus(t *testing.T) {
	var secrets = map[string]string{}
	for _, name := range config.Secrets {
		v, err := config.Secret(name)
		if err != nil {
			t.Fatal(err)
		}
		secrets[name] = v
	}
	home := os.Getenv(config.EnvHome)
	logs, _ := filepath.Glob(filepath.Join(home, "logs", "*.log"))
	if len(logs) < 10 {
		t.Fatalf("only %d logs under %s/logs: is this the stack's home?", len(logs), home)
	}
	out := map[string][]byte{}
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		out[l] = b
	}
	st, _ := exec.Command(stacktest.Bin(t), "status").CombinedOutput()
	out["stampede status"] = st
	help, _ := exec.Command(stacktest.Bin(t), "serve", "worker", "--help").CombinedOutput()
	out["stampede serve worker --help"] = help
	for _, svc := range []string{config.Orders, config.Inventory, config.Payments, config.Shipping, config.Notifications, config.Analytics} {
		out[svc+" /readyz"] = []byte(call(t, stacktest.Anonymous, "GET", stacktest.URL(svc)+"/readyz", "").body)
	}
	for where, b := range out {
		for name, v := range secrets {
			if bytes.Contains(b, []byte(v)) {
				t.Errorf("%s shows the %s", where, name)
			}
		}
	}
	if !bytes.Contains(help, []byte("redis://:xxxxx@")) {
		t.Errorf("serve worker --help shows no redacted Redis URL: the check saw no URL at all:\n%s", help)
	}
}
