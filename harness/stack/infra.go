package stack

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/sdk/client"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/kafka"
	"github.com/stampede-dev/stampede/platform/temporalclient"
)

//go:embed assets/kafka-pom.xml
var kafkaPom string

//go:embed assets/log4j2.properties
var kafkaLog4j string

// KafkaVersion is the Apache Kafka broker version the stack runs.
const KafkaVersion = "4.1.1"

const pgBinDirs = "/usr/lib/postgresql/*/bin"

// Postgres is a private PostgreSQL cluster under .stampede/data/pg, or the
// external one named by STAMPEDE_POSTGRES_URL.
func Postgres() Component {
	port := config.Port(config.Postgres)
	c := Component{Name: config.Postgres, Port: port, Timeout: 60 * time.Second}
	if config.External(config.Postgres) {
		c.External = config.RedactURL(config.PostgresURL())
		c.Ready = func(ctx context.Context) error { return pingPostgres(ctx, config.PostgresURL()) }
		return c
	}
	var bin string
	c.Prepare = func(ctx context.Context, s *Stack) error {
		initdb, err := s.ensureCommand(ctx, "initdb", "postgresql", pgBinDirs)
		if err != nil {
			return err
		}
		// Debian links some PostgreSQL tools onto PATH; the rest sit beside the real initdb.
		if real, err := filepath.EvalSymlinks(initdb); err == nil {
			initdb = real
		}
		bin = filepath.Dir(initdb)
		dir := s.DataDir(config.Postgres)
		if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
			return nil
		}
		s.logf("%-16s initdb %s", config.Postgres, dir)
		// The postgres user must be able to reach the directory through its parents.
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return err
		}
		if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
			return err
		}
		cred, err := postgresUser(dir)
		if err != nil {
			return err
		}
		// SCRAM-SHA-256 for every connection, local ones too: any process on
		// the machine can reach loopback. The password goes to initdb in a
		// file only it (the postgres user) can read, removed right after.
		pw, err := config.Secret(config.SecretPostgresPassword)
		if err != nil {
			return err
		}
		pwfile, err := postgresPasswordFile(filepath.Dir(dir), pw, cred)
		if err != nil {
			return err
		}
		defer os.Remove(pwfile)
		cmd := exec.CommandContext(ctx, initdb, "-D", dir, "-U", "postgres", "--auth=scram-sha-256", "--pwfile="+pwfile,
			"-E", "UTF8", "--no-instructions")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := cmd.CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			return fmt.Errorf("initdb: %w\n%s", err, out)
		}
		return nil
	}
	c.Command = func(s *Stack) (*exec.Cmd, *syscall.Credential, error) {
		dir := s.DataDir(config.Postgres)
		cred, err := postgresUser(dir)
		if err != nil {
			return nil, nil, err
		}
		cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", dir,
			"-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1",
			"-c", "unix_socket_directories="+dir,
			"-c", "max_connections=500",
			"-c", "shared_buffers=256MB",
			"-c", "log_min_messages=warning",
			"-c", "log_line_prefix=%m [%p] ",
		)
		return cmd, cred, nil
	}
	c.Ready = func(ctx context.Context) error {
		isready := filepath.Join(bin, "pg_isready")
		if bin == "" {
			p, err := findCommand("pg_isready", pgBinDirs)
			if err != nil {
				return err
			}
			isready = p
		}
		out, err := exec.CommandContext(ctx, isready, "-h", config.Host, "-p", strconv.Itoa(port), "-U", "postgres", "-d", "postgres").CombinedOutput()
		if err != nil {
			return fmt.Errorf("pg_isready: %v: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	c.After = func(ctx context.Context, s *Stack) error {
		if err := s.migrateTrust(ctx); err != nil {
			return err
		}
		err := createDatabase(ctx, config.PostgresAdminURL(), "stampede")
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "28P01" { // invalid_password
			return fmt.Errorf("%w\nthe cluster in %s was made with another password than %s: restore that file, or start over with `stampede down --wipe`",
				err, s.DataDir(config.Postgres), config.SecretPath(config.SecretPostgresPassword))
		}
		return err
	}
	return c
}

// postgresPasswordFile writes pw for initdb --pwfile into dir, readable by
// the user initdb runs as only.
func postgresPasswordFile(dir, pw string, cred *syscall.Credential) (string, error) {
	f, err := os.CreateTemp(dir, ".pwfile-*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	err = f.Chmod(0o600)
	if err == nil && cred != nil {
		err = f.Chown(int(cred.Uid), int(cred.Gid))
	}
	if err == nil {
		_, err = f.WriteString(pw + "\n")
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", fmt.Errorf("initdb password file: %w", err)
	}
	return name, nil
}

// pgHBA is the stack's client authentication: SCRAM-SHA-256 for everyone,
// on the socket and on loopback alike.
const pgHBA = `# Written by stampede up: every connection authenticates with SCRAM-SHA-256.
local   all   all                  scram-sha-256
host    all   all   127.0.0.1/32   scram-sha-256
host    all   all   ::1/128        scram-sha-256
`

// trustedHBA reports whether the cluster's pg_hba.conf lets anyone in
// without a password (a data directory from before SCRAM: initdb --auth=trust).
func trustedHBA(dir string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, "pg_hba.conf"))
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 4 && !strings.HasPrefix(f[0], "#") && slices.Contains(f, "trust") {
			return true, nil
		}
	}
	return false, nil
}

// migrateTrust moves a running cluster made with trust to SCRAM: while trust
// still lets it in, it sets the postgres role's password (as a SCRAM
// verifier, so the password never reaches the server), then replaces
// pg_hba.conf and reloads it. A cluster already on SCRAM is left alone.
func (s *Stack) migrateTrust(ctx context.Context) error {
	dir := s.DataDir(config.Postgres)
	trust, err := trustedHBA(dir)
	if err != nil || !trust {
		return err
	}
	s.logf("%-16s %s lets clients in without a password (trust): moving it to scram-sha-256", config.Postgres, filepath.Join(dir, "pg_hba.conf"))
	pw, err := config.Secret(config.SecretPostgresPassword)
	if err != nil {
		return err
	}
	verifier, err := scramVerifier(pw)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, config.PostgresAdminURL())
	if err != nil {
		return fmt.Errorf("connect to move %s off trust: %w", dir, err)
	}
	defer conn.Close(ctx)
	// A verifier is base64 and $ : only: safe inside a literal.
	if _, err := conn.Exec(ctx, "ALTER ROLE postgres PASSWORD '"+verifier+"'"); err != nil {
		return fmt.Errorf("set the postgres role's password: %w", err)
	}
	path := filepath.Join(dir, "pg_hba.conf")
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(pgHBA), 0o600); err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		os.Lchown(path, int(sys.Uid), int(sys.Gid))
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("reload %s: %w", path, err)
	}
	s.logf("%-16s now scram-sha-256 only (password in %s)", config.Postgres, config.SecretPath(config.SecretPostgresPassword))
	return nil
}

// postgresUser returns the credential to run PostgreSQL with: it refuses to
// run as root, so as root we run it as the postgres system user and give it
// the data directory.
func postgresUser(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL will not run as root and there is no postgres user: install the postgresql package (`apt-get install -y postgresql`) or run as another user")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	}); err != nil {
		return nil, fmt.Errorf("give %s to the postgres user: %w", dir, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func pingPostgres(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.Ping(ctx)
}

func createDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to create database %s: %w", name, err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("check database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// Redis is redis-server with AOF on, or the external one named by STAMPEDE_REDIS_URL.
func Redis() Component {
	port := config.Port(config.Redis)
	c := Component{Name: config.Redis, Port: port, Timeout: 30 * time.Second}
	c.Ready = func(ctx context.Context) error {
		opts, err := redis.ParseURL(config.RedisURL())
		if err != nil {
			return fmt.Errorf("parse %s: %w", config.EnvRedisURL, err)
		}
		rdb := redis.NewClient(opts)
		defer rdb.Close()
		err = rdb.Ping(ctx).Err()
		if err != nil && strings.Contains(err.Error(), "without any password configured") {
			return fmt.Errorf("%w: this Redis runs without requirepass (started before it had one): `stampede restart redis` starts it with %s", err, config.SecretPath(config.SecretRedisPassword))
		}
		return err
	}
	if config.External(config.Redis) {
		c.External = config.RedactURL(config.RedisURL())
		return c
	}
	var bin string
	c.Prepare = func(ctx context.Context, s *Stack) error {
		p, err := s.ensureCommand(ctx, "redis-server", "redis-server")
		bin = p
		if err != nil {
			return err
		}
		if err := os.MkdirAll(s.DataDir(config.Redis), 0o755); err != nil {
			return err
		}
		// requirepass in a file of mode 0600, not on the command line where
		// ps shows it to every user.
		pw, err := config.Secret(config.SecretRedisPassword)
		if err != nil {
			return err
		}
		return writeSecret(redisConf(s), "# Written by stampede up.\nrequirepass "+pw)
	}
	c.Command = func(s *Stack) (*exec.Cmd, *syscall.Credential, error) {
		return exec.Command(bin, redisConf(s),
			"--bind", config.Host, "--port", strconv.Itoa(port),
			"--dir", s.DataDir(config.Redis),
			"--appendonly", "yes", "--appendfsync", "everysec",
			"--save", "", "--daemonize", "no", "--protected-mode", "yes",
		), nil, nil
	}
	return c
}

func redisConf(s *Stack) string { return filepath.Join(s.DataDir(config.Redis), "redis.conf") }

// Kafka is a single-node KRaft Apache Kafka broker run from Maven Central jars,
// or the external cluster named by STAMPEDE_KAFKA_BROKERS.
func Kafka(replication int16, heap string, jvmOpts []string) Component {
	port := config.Port(config.Kafka)
	ctrl := config.Port(config.KafkaController)
	saslPort := config.Port(config.KafkaSASL)
	c := Component{Name: config.Kafka, Port: port, Ports: []int{ctrl, saslPort}, Timeout: 120 * time.Second}
	c.Ready = func(ctx context.Context) error { return kafka.Ping(ctx, config.KafkaBrokers()) }
	c.After = func(ctx context.Context, s *Stack) error {
		cl, err := kgo.NewClient(kafka.BaseOpts("stampede-up", config.KafkaBrokers())...)
		if err != nil {
			return err
		}
		defer cl.Close()
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := kafka.EnsureTopics(cctx, cl, kafka.Topics, replication); err != nil {
			return err
		}
		if config.External(config.Kafka) {
			return nil
		}
		if os.Getenv(EnvNoNice) == "" {
			if pid := s.readPid(config.Kafka); pid > 0 {
				if n, err := reniceJIT("/proc", pid, setThreadNice); err != nil {
					s.logf("%-16s JIT compiler left at the broker's priority: %v", config.Kafka, err)
				} else if n > 0 {
					s.logf("%-16s %d C2 compiler thread(s) at nice %d: compiles in the host's idle time", config.Kafka, n, NiceJIT)
				}
			}
		}
		return upsertSCRAMUser(cctx, cl)
	}
	if config.External(config.Kafka) {
		c.External = strings.Join(config.KafkaBrokers(), ",")
		c.Ports = nil
		return c
	}
	var java, jars string
	c.Prepare = func(ctx context.Context, s *Stack) error {
		var err error
		if java, err = s.ensureCommand(ctx, "java", "openjdk-17-jre-headless"); err != nil {
			return err
		}
		if jars, err = s.KafkaJars(ctx); err != nil {
			return err
		}
		return s.kafkaConfig(ctx, java, jars, port, ctrl, saslPort)
	}
	c.Command = func(s *Stack) (*exec.Cmd, *syscall.Credential, error) {
		dir := s.DataDir(config.Kafka)
		args := append([]string{"-Xms256m", "-Xmx" + heap}, jvmOpts...)
		args = append(args, "-Djava.awt.headless=true",
			"-Dlog4j2.configurationFile="+filepath.Join(dir, "log4j2.properties"),
			"-cp", filepath.Join(jars, "*"),
			"kafka.Kafka", filepath.Join(dir, "server.properties"))
		return exec.Command(java, args...), nil, nil
	}
	return c
}

// KafkaJars fetches the broker jars from Maven Central once into the cache
// (Home/cache/kafka-VERSION) and returns that directory. The Kafka container
// image is built from the same jars.
func (s *Stack) KafkaJars(ctx context.Context) (string, error) {
	dir := filepath.Join(s.Home, "cache", "kafka-"+KafkaVersion)
	done := filepath.Join(dir, ".complete")
	if _, err := os.Stat(done); err == nil {
		return dir, nil
	}
	mvn, err := s.ensureCommand(ctx, "mvn", "maven")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	pom := filepath.Join(s.Home, "cache", "kafka-pom.xml")
	if err := os.WriteFile(pom, []byte(strings.ReplaceAll(kafkaPom, "@KAFKA_VERSION@", KafkaVersion)), 0o644); err != nil {
		return "", err
	}
	s.logf("%-16s fetching Apache Kafka %s jars from Maven Central into %s", config.Kafka, KafkaVersion, dir)
	cmd := exec.CommandContext(ctx, mvn, "-q", "-B", "-f", pom, "dependency:copy-dependencies",
		"-DoutputDirectory="+dir, "-DincludeScope=runtime")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("fetch Kafka jars with Maven (is Maven Central reachable?): %w\n%s", err, tail(string(out), 20))
	}
	if err := os.WriteFile(done, []byte(KafkaVersion+"\n"), 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

// upsertSCRAMUser creates (or sets the password of) the SCRAM-SHA-256 user
// of the broker's SASL listener, with the stack's generated password.
func upsertSCRAMUser(ctx context.Context, cl *kgo.Client) error {
	user := config.Env(kafka.EnvSASLUser, kafka.DefaultSASLUser)
	pw, err := config.Secret(config.SecretKafkaSASLPassword)
	if err != nil {
		return err
	}
	res, err := kadm.NewClient(cl).AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: user, Mechanism: kadm.ScramSha256, Iterations: 4096, Password: pw},
	})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		return fmt.Errorf("create the SCRAM user %s of the SASL listener: %w", user, err)
	}
	return nil
}

// kafkaConfig writes the broker's configuration and formats its storage on
// first start. Beside PLAINTEXT, which the platform uses, it listens with
// SASL_PLAINTEXT and SCRAM-SHA-256 on saslPort, so the SASL path
// (STAMPEDE_KAFKA_SASL_*) is tested against a real broker.
func (s *Stack) kafkaConfig(ctx context.Context, java, jars string, port, ctrl, saslPort int) error {
	dir := s.DataDir(config.Kafka)
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}
	props := fmt.Sprintf(`# Written by stampede up; single-node KRaft broker on loopback.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d,SASL://127.0.0.1:%[4]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d,SASL://127.0.0.1:%[4]d
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL:SASL_PLAINTEXT
listener.name.sasl.sasl.enabled.mechanisms=SCRAM-SHA-256
listener.name.sasl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
controller.quorum.bootstrap.servers=127.0.0.1:%[2]d
log.dirs=%[3]s
num.partitions=6
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=2000
group.consumer.min.session.timeout.ms=2000
group.consumer.session.timeout.ms=6000
group.consumer.min.heartbeat.interval.ms=500
group.consumer.heartbeat.interval.ms=1000
auto.create.topics.enable=false
log.retention.hours=24
log.segment.bytes=268435456
num.network.threads=2
num.io.threads=4
`, port, ctrl, logs, saslPort)
	if err := os.WriteFile(filepath.Join(dir, "server.properties"), []byte(props), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "log4j2.properties"), []byte(kafkaLog4j), 0o644); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(logs, "meta.properties")); err == nil {
		return nil
	}
	id := make([]byte, 16)
	rand.Read(id)
	clusterID := base64.RawURLEncoding.EncodeToString(id)
	s.logf("%-16s formatting KRaft storage (cluster id %s)", config.Kafka, clusterID)
	cmd := exec.CommandContext(ctx, java, "-Xmx256m",
		"-Dlog4j2.configurationFile="+filepath.Join(dir, "log4j2.properties"),
		"-cp", filepath.Join(jars, "*"), "kafka.tools.StorageTool", "format",
		"-t", clusterID, "-c", filepath.Join(dir, "server.properties"), "--standalone")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("format Kafka storage: %w\n%s", err, tail(string(out), 20))
	}
	return nil
}

// Temporal is the embedded Temporal server binary (bin/stampede-temporal),
// or the external frontend named by STAMPEDE_TEMPORAL_ADDRESS.
func Temporal() Component {
	port := config.Port(config.Temporal)
	c := Component{Name: config.Temporal, Port: port,
		Ports:       []int{config.Port(config.TemporalUI), config.Port(config.TemporalMetrics)},
		Timeout:     120 * time.Second,
		MetricsAddr: config.Addr(config.TemporalMetrics),
		// The server exports ~15k series; one scrape cost it 41 ms of CPU
		// (20 scrapes timed from /proc/<pid>/stat), 2% of a core at the
		// stack's 2 s, plus Prometheus' ingest of them. No gate or dashboard
		// reads the server's own metrics (the saga dashboards read the
		// workers' SDK metrics); they are there for diagnosis, which 10 s
		// serves.
		ScrapeInterval: 10 * time.Second}
	c.Ready = func(ctx context.Context) error {
		return pingTemporal(ctx, config.TemporalAddress(), config.TemporalNamespace())
	}
	if config.External(config.Temporal) {
		c.External = config.TemporalAddress()
		c.Ports = nil
		c.MetricsAddr = ""
		return c
	}
	c.Command = func(s *Stack) (*exec.Cmd, *syscall.Credential, error) {
		bin := filepath.Join(s.BinDir, "stampede-temporal")
		if _, err := os.Stat(bin); err != nil {
			return nil, nil, fmt.Errorf("%s is missing: build it with `make temporal`", bin)
		}
		return exec.Command(bin,
			"--ip", config.Host,
			"--port", strconv.Itoa(port),
			"--ui-port", strconv.Itoa(config.Port(config.TemporalUI)),
			"--metrics-port", strconv.Itoa(config.Port(config.TemporalMetrics)),
			"--data-dir", s.DataDir(config.Temporal),
		), nil, nil
	}
	return c
}

func pingTemporal(ctx context.Context, addr, namespace string) error {
	opts, err := temporalclient.Options(client.Options{HostPort: addr, Namespace: namespace, Logger: quietLogger{}})
	if err != nil {
		return err
	}
	c, err := client.NewLazyClient(opts)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return fmt.Errorf("health check of %s: %w", addr, err)
	}
	return nil
}

// Toxiproxy is the embedded toxiproxy server with the payments proxy.
func Toxiproxy() Component {
	port := config.Port(config.Toxiproxy)
	c := Component{Name: config.Toxiproxy, Port: port, Ports: []int{config.Port(config.PaymentsProxy)}, Timeout: 20 * time.Second,
		MetricsAddr: config.Addr(config.Toxiproxy)}
	c.Command = func(s *Stack) (*exec.Cmd, *syscall.Credential, error) {
		return s.self("serve", "toxiproxy"), nil, nil
	}
	c.Ready = httpReady(fmt.Sprintf("http://%s/version", config.Addr(config.Toxiproxy)))
	return c
}

// Service is a platform process started as `stampede serve NAME args...`,
// ready when its readiness URL answers 200.
func Service(name string, port int, readyPath string, args ...string) Component {
	c := Component{Name: name, Port: port, Timeout: 60 * time.Second, MetricsAddr: fmt.Sprintf("%s:%d", config.Host, port)}
	c.Command = func(s *Stack) (*exec.Cmd, *syscall.Credential, error) {
		cmd := s.self(append([]string{"serve"}, args...)...)
		cmd.Env = serviceEnv(os.Environ())
		return cmd, nil, nil
	}
	c.Ready = httpReady(fmt.Sprintf("http://%s:%d%s", config.Host, port, readyPath))
	return c
}

// serviceEnv is the environment of a platform process: env with GOMAXPROCS=1
// unless env sets it. Seventeen Go processes share two cores here and each
// spends most of its time waiting on I/O; with one P each, their runtimes stop
// spinning idle threads looking for work: CPU per saga of these processes
// about -12% (21.6 -> 19.0 ms at 10/s, stampede bench cost).
func serviceEnv(env []string) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "GOMAXPROCS=") {
			return env
		}
	}
	return append(env, "GOMAXPROCS=1")
}

// self is a command running this stampede binary.
func (s *Stack) self(args ...string) *exec.Cmd {
	exe := filepath.Join(s.BinDir, "stampede")
	if p, err := os.Executable(); err == nil {
		exe = p
	}
	return exec.Command(exe, args...)
}

func httpReady(url string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// quietLogger keeps the SDK's connection chatter out of the launcher's output.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
