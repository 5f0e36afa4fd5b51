package stampedetest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/kafka"
)

const (
	// ryukImage is testcontainers' reaper, which it runs unless
	// TESTCONTAINERS_RYUK_DISABLED=true.
	ryukImage = "testcontainers/ryuk:0.14.0"
	// kafkaPublicPort is the listener testcontainers' kafka module
	// advertises to the host; kafka:9092 is the one inside the network.
	kafkaPublicPort  = 9093
	postgresPassword = "stampede"
)

// runner starts the containers of one Stack.
type runner struct {
	t  testing.TB
	s  *settings
	st *Stack
}

// engine connects to the container engine testcontainers would use, and
// fails fast (never hangs) when none answers.
func engine(ctx context.Context) (cli *testcontainers.DockerClient, err error) {
	defer func() {
		// testcontainers panics where it finds no Docker host at all.
		if r := recover(); r != nil {
			cli, err = nil, fmt.Errorf("%v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return testcontainers.NewDockerClientWithOpts(ctx)
}

func imagePresent(ctx context.Context, cli *testcontainers.DockerClient, ref string) error {
	_, err := cli.ImageInspect(ctx, ref)
	return err
}

// common are the options every container gets: the network (with its name
// as alias and hostname), a label naming the test, and its ports published
// on 127.0.0.1 (last, so it sees every port the module exposed).
func (r *runner) common(name string) []testcontainers.ContainerCustomizer {
	return []testcontainers.ContainerCustomizer{
		network.WithNetworkName([]string{name}, r.st.Network),
		testcontainers.WithConfigModifier(func(c *container.Config) { c.Hostname = name }),
		testcontainers.WithLabels(map[string]string{"dev.stampede.part": name}),
	}
}

// publish binds every exposed port on 127.0.0.1: ephemeral, or the fixed
// port of WithHostPorts.
func (r *runner) publish(name string) testcontainers.CustomizeRequestOption {
	return func(req *testcontainers.GenericContainerRequest) error {
		exposed := slices.Clone(req.ExposedPorts)
		return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			if hc.PortBindings == nil {
				hc.PortBindings = mobynet.PortMap{}
			}
			for _, e := range exposed {
				p, err := mobynet.ParsePort(e)
				if err != nil {
					continue
				}
				hostPort := ""
				if hp := r.s.hostPort(name, int(p.Num())); hp > 0 {
					hostPort = strconv.Itoa(hp)
				}
				hc.PortBindings[p] = []mobynet.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: hostPort}}
			}
		})(req)
	}
}

// keep registers c with the stack and its removal with the test; when the
// test failed, the end of its log goes to the test's output first.
func (r *runner) keep(name string, c testcontainers.Container) {
	if c == nil {
		return
	}
	r.st.add(name, c)
	r.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if r.t.Failed() {
			r.t.Logf("stampedetest: --- %s: last lines of its log ---\n%s", name, tail(ctx, c, 40))
		}
		if err := testcontainers.TerminateContainer(c, testcontainers.StopTimeout(5*time.Second)); err != nil {
			r.t.Logf("stampedetest: remove %s: %v", name, err)
		}
	})
}

// runFunc starts a container as testcontainers.Run or a module's Run does.
type runFunc func(ctx context.Context, img string, opts ...testcontainers.ContainerCustomizer) (testcontainers.Container, error)

// generic is testcontainers.Run, with no container as a nil interface (not
// a nil *DockerContainer in one).
func generic(ctx context.Context, img string, opts ...testcontainers.ContainerCustomizer) (testcontainers.Container, error) {
	c, err := testcontainers.Run(ctx, img, opts...)
	if c == nil {
		return nil, err
	}
	return c, err
}

// run starts container name from img with the common options, ports
// published last. Podman picks an ephemeral host port by binding and
// releasing it, so with many containers starting at once another may take it
// first ("address already in use"): that start is tried again, twice at most.
// A fixed port (WithHostPorts) is not: its clash is reported, naming it.
func (r *runner) run(ctx context.Context, name, img string, run runFunc, opts ...testcontainers.ContainerCustomizer) (testcontainers.Container, error) {
	opts = append(append(r.common(name), opts...), r.publish(name))
	for attempt := 1; ; attempt++ {
		c, err := run(ctx, img, opts...)
		if err != nil && attempt < 3 && r.s.portOffset == 0 && strings.Contains(err.Error(), "address already in use") {
			if c != nil {
				testcontainers.TerminateContainer(c)
			}
			r.t.Logf("stampedetest: %s: an ephemeral port was taken as it started; starting it again", name)
			continue
		}
		r.keep(name, c)
		return c, explain(err)
	}
}

// endpoint is 127.0.0.1:port of a container port: where publish bound it.
// Not the container's Host(): testcontainers answers a bridge gateway when
// it thinks it runs in a container, where nothing listens. A remote engine
// (DOCKER_HOST=tcp://...) cannot serve a test on this host's loopback.
func endpoint(ctx context.Context, c interface {
	MappedPort(context.Context, string) (mobynet.Port, error)
}, port int) (string, error) {
	p, err := c.MappedPort(ctx, fmt.Sprintf("%d/tcp", port))
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", p.Port()), nil
}

// explain turns an engine's refusal to bind a fixed port into one naming it.
func explain(err error) error {
	if err == nil {
		return nil
	}
	if m := regexp.MustCompile(`(\d+\.\d+\.\d+\.\d+):(\d+).*address already in use`).FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("host port %s on %s is taken (address already in use): %w", m[2], m[1], err)
	}
	return err
}

func (r *runner) postgres(ctx context.Context) error {
	c, err := r.run(ctx, "postgres", r.s.images["postgres"], func(ctx context.Context, img string, opts ...testcontainers.ContainerCustomizer) (testcontainers.Container, error) {
		c, err := tcpostgres.Run(ctx, img, opts...)
		if c == nil {
			return nil, err
		}
		return c, err
	},
		tcpostgres.WithDatabase("stampede"),
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithPassword(postgresPassword),
		// Every service keeps a pool; fsync off: a test's data need not survive a crash.
		testcontainers.WithCmd("postgres", "-c", "fsync=off", "-c", "max_connections=300"),
		// Both the official image's temporary init server and this one's
		// listen on the socket only: 5432/tcp answering means the real one.
		testcontainers.WithWaitStrategyAndDeadline(2*time.Minute,
			wait.ForLog("database system is ready to accept connections"),
			wait.ForListeningPort("5432/tcp")),
	)
	if err != nil {
		return err
	}
	addr, err := endpoint(ctx, c, 5432)
	if err != nil {
		return err
	}
	r.st.PostgresURL = fmt.Sprintf("postgres://postgres:%s@%s/stampede?sslmode=disable", postgresPassword, addr)
	return nil
}

func (r *runner) redis(ctx context.Context) error {
	c, err := r.run(ctx, "redis", r.s.images["redis"], func(ctx context.Context, img string, opts ...testcontainers.ContainerCustomizer) (testcontainers.Container, error) {
		c, err := tcredis.Run(ctx, img, opts...)
		if c == nil {
			return nil, err
		}
		return c, err
	})
	if err != nil {
		return err
	}
	addr, err := endpoint(ctx, c, 6379)
	if err != nil {
		return err
	}
	r.st.RedisURL = "redis://" + addr + "/0"
	return nil
}

// kafkaStarter is the start-up script copied into the Kafka container once
// its host port is known: the broker must advertise that port to clients on
// the host, and kafka:9092 to the containers. It drives the entrypoint layout
// of Confluent's images, which the local image follows too (as testcontainers'
// own kafka module does; its v0.45 is not to be had here, and v0.40 does not
// build against testcontainers v0.45).
const kafkaStarter = `#!/bin/bash
source /etc/confluent/docker/bash-config
export KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://%s,BROKER://kafka:9092
sed -i '/KAFKA_ZOOKEEPER_CONNECT/d' /etc/confluent/docker/configure
echo 'kafka-storage format --ignore-formatted -t "$CLUSTER_ID" -c /etc/kafka/kafka.properties' >> /etc/confluent/docker/configure
echo '' > /etc/confluent/docker/ensure
/etc/confluent/docker/configure
exec /etc/confluent/docker/launch
`

const kafkaStarterPath = "/usr/sbin/stampedetest_start.sh"

func (r *runner) kafka(ctx context.Context) error {
	public := fmt.Sprintf("%d/tcp", kafkaPublicPort)
	c, err := r.run(ctx, "kafka", r.s.images["kafka"], generic,
		testcontainers.WithExposedPorts(public),
		testcontainers.WithEntrypoint("sh"),
		testcontainers.WithCmd("-c", "while [ ! -f "+kafkaStarterPath+" ]; do sleep 0.1; done; exec bash "+kafkaStarterPath),
		testcontainers.WithEnv(map[string]string{
			"CLUSTER_ID":                                     "c3RhbXBlZGUtdGVzdC0wMQ",
			"KAFKA_NODE_ID":                                  "1",
			"KAFKA_PROCESS_ROLES":                            "broker,controller",
			"KAFKA_LISTENERS":                                fmt.Sprintf("PLAINTEXT://0.0.0.0:%d,BROKER://0.0.0.0:9092,CONTROLLER://0.0.0.0:9094", kafkaPublicPort),
			"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":           "BROKER:PLAINTEXT,PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
			"KAFKA_INTER_BROKER_LISTENER_NAME":               "BROKER",
			"KAFKA_CONTROLLER_LISTENER_NAMES":                "CONTROLLER",
			"KAFKA_CONTROLLER_QUORUM_VOTERS":                 "1@kafka:9094",
			"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":         "1",
			"KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS":             "6",
			"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
			"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":            "1",
			"KAFKA_TRANSACTION_STATE_LOG_NUM_PARTITIONS":     "6",
			// The broker settings `stampede up` uses, where they matter in a
			// test: no auto-created topics, quick group joins, a small heap.
			"KAFKA_HEAP_OPTS":                                        "-Xms256m -Xmx512m",
			"KAFKA_AUTO_CREATE_TOPICS_ENABLE":                        "false",
			"KAFKA_NUM_PARTITIONS":                                   "6",
			"KAFKA_DEFAULT_REPLICATION_FACTOR":                       "1",
			"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":                 "0",
			"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
			"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR":            "1",
			"KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS":                     "2000",
			"KAFKA_GROUP_CONSUMER_MIN_SESSION_TIMEOUT_MS":            "2000",
			"KAFKA_GROUP_CONSUMER_SESSION_TIMEOUT_MS":                "6000",
			"KAFKA_GROUP_CONSUMER_MIN_HEARTBEAT_INTERVAL_MS":         "500",
			"KAFKA_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS":             "1000",
			"KAFKA_NUM_NETWORK_THREADS":                              "2",
			"KAFKA_NUM_IO_THREADS":                                   "4",
		}),
		// Port mapped: write the starter with it, then wait for the broker.
		testcontainers.WithAdditionalLifecycleHooks(testcontainers.ContainerLifecycleHooks{
			PostStarts: []testcontainers.ContainerHook{func(ctx context.Context, c testcontainers.Container) error {
				if err := wait.ForMappedPort(public).WaitUntilReady(ctx, c); err != nil {
					return fmt.Errorf("wait for the mapped port: %w", err)
				}
				addr, err := endpoint(ctx, c, kafkaPublicPort)
				if err != nil {
					return err
				}
				if err := c.CopyToContainer(ctx, []byte(fmt.Sprintf(kafkaStarter, addr)), kafkaStarterPath, 0o755); err != nil {
					return fmt.Errorf("copy the start-up script: %w", err)
				}
				return wait.ForLog(".*Transitioning from RECOVERY to RUNNING.*").AsRegexp().
					WithStartupTimeout(3*time.Minute).WaitUntilReady(ctx, c)
			}},
		}),
	)
	if err != nil {
		return err
	}
	addr, err := endpoint(ctx, c, kafkaPublicPort)
	if err != nil {
		return err
	}
	r.st.Brokers = []string{addr}
	// The topics `stampede up` creates; the services never create them.
	cl, err := kgo.NewClient(kafka.BaseOpts("stampedetest", r.st.Brokers)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(ctx, cl, kafka.Topics, 1); err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	return nil
}

func (r *runner) temporal(ctx context.Context) error {
	c, err := r.run(ctx, "temporal", r.s.images["temporal"], generic,
		testcontainers.WithExposedPorts("7233/tcp", "8233/tcp"),
		testcontainers.WithWaitStrategyAndDeadline(3*time.Minute,
			wait.ForHTTP("/").WithPort("8233/tcp").WithStatusCodeMatcher(func(status int) bool { return status < 500 }),
			temporalHealthy{port: 7233}),
	)
	if err != nil {
		return err
	}
	if r.st.TemporalAddress, err = endpoint(ctx, c, 7233); err != nil {
		return err
	}
	ui, err := endpoint(ctx, c, 8233)
	if err != nil {
		return err
	}
	r.st.TemporalUIURL = "http://" + ui
	return nil
}

// temporalHealthy waits until the frontend's health check answers SERVING,
// which stampede-temporal holds back until the namespace and its search
// attributes exist.
type temporalHealthy struct{ port int }

func (w temporalHealthy) WaitUntilReady(ctx context.Context, target wait.StrategyTarget) error {
	var last error
	for {
		addr, err := endpoint(ctx, target, w.port)
		if err == nil {
			err = pingTemporal(ctx, addr)
		}
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("temporal frontend never healthy: %w", last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func pingTemporal(ctx context.Context, addr string) error {
	c, err := client.NewLazyClient(client.Options{HostPort: addr, Logger: quietLogger{}})
	if err != nil {
		return err
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = c.CheckHealth(cctx, &client.CheckHealthRequest{})
	return err
}

type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

// toxiproxy is the project's embedded toxiproxy (`stampede serve
// toxiproxy`): its API, and proxy "payments" that the workers call Payments
// through.
func (r *runner) toxiproxy(ctx context.Context) error {
	c, err := r.run(ctx, "toxiproxy", r.s.images["stampede"], generic,
		testcontainers.WithCmd("serve", "toxiproxy",
			"--api", "0.0.0.0:8474", "--payments-listen", "0.0.0.0:18082", "--payments-upstream", "payments:8082"),
		testcontainers.WithExposedPorts("8474/tcp", "18082/tcp"),
		testcontainers.WithWaitStrategyAndDeadline(time.Minute, wait.ForHTTP("/version").WithPort("8474/tcp")),
	)
	if err != nil {
		return err
	}
	addr, err := endpoint(ctx, c, 8474)
	if err != nil {
		return err
	}
	r.st.ToxiproxyURL = "http://" + addr
	r.st.Toxiproxy = toxiclient.NewClient(addr)
	return nil
}

// process is one Stampede process container: `stampede serve ARGS`.
type process struct {
	name  string
	port  int
	ready string
	args  []string
}

// processes lists the Stampede processes in start order; intake (orders)
// last, so an order it accepts finds everything downstream running.
func (s *settings) processes() []process {
	out := []process{
		{"relay", 8090, "/healthz", []string{"relay"}},
		{"inventory", 8081, "/readyz", []string{"inventory"}},
		{"payments", 8082, "/readyz", []string{"payments"}},
		{"shipping", 8083, "/readyz", []string{"shipping"}},
		{"notifications", 8084, "/readyz", []string{"notifications"}},
		{"analytics", 8085, "/readyz", []string{"analytics"}},
	}
	for i := 1; i <= s.workers; i++ {
		out = append(out, process{fmt.Sprintf("worker-%d", i), 8096, "/healthz", []string{"worker", "--port", "8096"}})
	}
	for i := 1; i <= s.orchestrators; i++ {
		out = append(out, process{fmt.Sprintf("orchestrator-%d", i), 8091, "/readyz",
			[]string{"orchestrator", "--port", "8091", "--instance", strconv.Itoa(i)}})
	}
	return append(out, process{"orders", 8080, "/readyz", []string{"orders"}})
}

// platform starts every Stampede process, all at once: each waits for its
// own readiness, and they reach each other (and the infrastructure) by
// container name.
func (r *runner) platform(ctx context.Context) error {
	env := map[string]string{
		config.EnvPostgresURL:     fmt.Sprintf("postgres://postgres:%s@postgres:5432/stampede?sslmode=disable", postgresPassword),
		config.EnvRedisURL:        "redis://redis:6379/0",
		config.EnvKafkaBrokers:    "kafka:9092",
		config.EnvTemporalAddress: "temporal:7233",
		"STAMPEDE_ORDERS_URL":     "http://orders:8080",
		"STAMPEDE_INVENTORY_URL":  "http://inventory:8081",
		"STAMPEDE_PAYMENTS_URL":   "http://toxiproxy:18082", // through toxiproxy, as on the native stack
		"STAMPEDE_SHIPPING_URL":   "http://shipping:8083",
		config.EnvListenHost:      "0.0.0.0",
		// Secrets as env (no .stampede here); any Host, since the parts
		// reach each other by container name and the tests by published port.
		config.SecretEnv(config.SecretServiceToken): r.st.ServiceToken,
		config.SecretEnv(config.SecretUserTokenKey): randomToken(),
		config.EnvAllowedHosts:                      "*",
	}
	for k, v := range r.s.env {
		env[k] = v
	}
	urls := map[string]*string{
		"orders": &r.st.OrdersURL, "inventory": &r.st.InventoryURL, "payments": &r.st.PaymentsURL,
		"shipping": &r.st.ShippingURL, "notifications": &r.st.NotificationsURL,
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range r.s.processes() {
		g.Go(func() error {
			return r.timed(p.name, func() error {
				c, err := r.run(gctx, p.name, r.s.images["stampede"], generic,
					testcontainers.WithCmd(append([]string{"serve"}, p.args...)...),
					testcontainers.WithEnv(env),
					testcontainers.WithExposedPorts(fmt.Sprintf("%d/tcp", p.port)),
					testcontainers.WithWaitStrategyAndDeadline(2*time.Minute,
						wait.ForHTTP(p.ready).WithPort(fmt.Sprintf("%d/tcp", p.port))),
				)
				if err != nil {
					return err
				}
				if u, ok := urls[p.name]; ok {
					addr, err := endpoint(gctx, c, p.port)
					if err != nil {
						return err
					}
					*u = "http://" + addr
				}
				return nil
			})
		})
	}
	return g.Wait()
}

var _ wait.Strategy = temporalHealthy{}

// randomToken is 32 random bytes, base64url: a token or key for one stack.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
