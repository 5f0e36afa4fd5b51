// Package stacktest helps integration tests reach the real stack that
// scripts/integration.sh started: service URLs, database pools, Kafka
// consumers, and the stampede binary to stop, kill and start components.
//
// Integration tests call the stack as one of its own services would: on
// import, this package points STAMPEDE_HOME at the repository's .stampede
// (unless set) and makes http.DefaultTransport present the stack's service
// token to every loopback address (read from .stampede/secrets at each
// request, so a missing token fails the request, naming the file). A test of
// what an anonymous caller gets uses Anonymous.
//
// It must only be imported by tests. A test that cannot reach the stack
// fails; it never skips.
package stacktest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/kafka"
	"github.com/stampede-dev/stampede/platform/postgres"
	"github.com/stampede-dev/stampede/platform/web"
)

// Root returns the repository root (where the Makefile and .stampede are).
func Root(t testing.TB) string {
	t.Helper()
	root := findRoot()
	if root == "" {
		wd, _ := os.Getwd()
		t.Fatalf("no repository root above %s", wd)
	}
	return root
}

func findRoot() string {
	wd, _ := os.Getwd()
	for d := wd; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "Makefile")); err == nil {
			return d
		}
	}
	return ""
}

// Anonymous is a client without the service token: what any other local
// process, or a browser page, gets from the stack.
var Anonymous = &http.Client{Transport: http.DefaultTransport, Timeout: 30 * time.Second}

func init() {
	if os.Getenv(config.EnvHome) == "" {
		if root := findRoot(); root != "" {
			os.Setenv(config.EnvHome, filepath.Join(root, ".stampede"))
		}
	}
	http.DefaultTransport = &serviceTransport{base: http.DefaultTransport}
}

// serviceTransport presents the service token (web.Bearer) to loopback.
type serviceTransport struct{ base http.RoundTripper }

func (s *serviceTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if h := r.URL.Hostname(); h != config.Host && h != "localhost" {
		return s.base.RoundTrip(r)
	}
	tok, err := config.ServiceToken()
	if err != nil {
		return nil, fmt.Errorf("stacktest: %w", err)
	}
	return web.Bearer(tok, s.base).RoundTrip(r)
}

// ServiceToken returns the stack's service token.
func ServiceToken(t testing.TB) string {
	t.Helper()
	tok, err := config.ServiceToken()
	if err != nil {
		t.Fatalf("the stack's service token (start the stack with `stampede up`): %v", err)
	}
	return tok
}

// UserToken returns a token of user for the stack's Orders API, valid an hour.
func UserToken(t testing.TB, user string) string {
	t.Helper()
	key, err := config.UserTokenKey()
	if err != nil {
		t.Fatalf("the stack's user-token key (start the stack with `stampede up`): %v", err)
	}
	tok, err := web.NewUserTokens(key).Issue(user, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Bin returns the path of bin/stampede (STAMPEDE_BIN, else the repo's bin/).
func Bin(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("STAMPEDE_BIN")
	if dir == "" {
		dir = filepath.Join(Root(t), "bin")
	}
	p := filepath.Join(dir, "stampede")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("stampede binary not found at %s (run the integration tests with `make test`)", p)
	}
	return p
}

// Stampede runs bin/stampede with args and fails the test if it fails.
func Stampede(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(Bin(t), args...)
	cmd.Dir = Root(t) // the stack's state (.stampede) is relative to the root unless STAMPEDE_HOME says otherwise
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("stampede %v: %v\n%s", args, err, out.String())
	}
	return out.String()
}

// URL returns the base URL of a service of the stack.
func URL(name string) string { return "http://" + config.Addr(name) }

// WaitHTTP waits until GET url answers 200.
func WaitHTTP(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %s: %v", url, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// DB returns a pool on the schema of the stack's database.
func DB(t testing.TB, schema string) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := postgres.Open(ctx, config.PostgresURL(), schema, 4, 5*time.Second)
	if err != nil {
		t.Fatalf("the stack's PostgreSQL is not reachable (run with `make test`): %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// Consumer returns a read_committed consumer of topics starting at their
// current end, so it sees only what is produced after this call.
func Consumer(t testing.TB, topics ...string) *kgo.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := kgo.NewClient(kafka.BaseOpts("stacktest-admin", config.KafkaBrokers())...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, topics...)
	if err != nil {
		t.Fatalf("the stack's Kafka is not reachable (run with `make test`): %v", err)
	}
	offsets := map[string]map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if offsets[o.Topic] == nil {
			offsets[o.Topic] = map[int32]kgo.Offset{}
		}
		offsets[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset)
	})
	cl, err := kgo.NewClient(append(kafka.BaseOpts("stacktest", config.KafkaBrokers()),
		kgo.ConsumePartitions(offsets),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Collect polls cl until done returns true for the records seen so far, or
// timeout. done is asked at least every 250 ms.
func Collect(cl *kgo.Client, timeout time.Duration, done func([]*kgo.Record) bool) []*kgo.Record {
	var got []*kgo.Record
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), min(250*time.Millisecond, time.Until(deadline)))
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r) })
		if done(got) {
			break
		}
	}
	return got
}
