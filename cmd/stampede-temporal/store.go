package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"
	"go.temporal.io/server/common/persistence"
	"go.temporal.io/server/common/persistence/serialization"
	"go.temporal.io/server/common/persistence/sql"
	"go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/resolver"
	temporalschema "go.temporal.io/server/schema"
	postgresschema "go.temporal.io/server/schema/postgresql/v12"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/tools/common/schema"
	sqltool "go.temporal.io/server/tools/sql"
)

// store is where the server keeps history (main) and visibility, with the
// schema each needs.
type store struct {
	kind       string
	main       config.SQL
	visibility config.SQL

	// schema dirs inside go.temporal.io/server/schema, and the version a
	// fresh schema.sql corresponds to (SQLite has no versioned base).
	mainSchema, visSchema   string
	mainVersion, visVersion string
}

// newStore describes the store the options ask for, without touching it.
func newStore(o options) (store, error) {
	switch o.Persistence {
	case persistenceSQLite:
		return sqliteStore(o.DataDir, o.SQLiteConns), nil
	case persistencePostgres:
		return postgresStore(o.PostgresURL)
	}
	return store{}, fmt.Errorf("unknown persistence %q", o.Persistence)
}

// sqliteStore keeps history and visibility in two files, so that the
// visibility writes (one per workflow start and close) do not queue behind
// history writes on SQLite's single writer. Each file gets conns
// connections: queries beside the one writer (writelock.go).
func sqliteStore(dir string, conns int) store {
	attrs := func() map[string]string {
		a := map[string]string{
			"mode": "rwc",
			// WAL lets readers run beside the writer and turns each commit
			// into an append; synchronous=normal syncs the WAL at checkpoints
			// only. A crashed process loses nothing; a power cut may lose the
			// last commits, which is fine for a development and load stack.
			"journal_mode": "wal",
			"synchronous":  "normal",
			"busy_timeout": "10000",
		}
		if os.Getenv(EnvCheckpointer) != "0" {
			// The server's connections never checkpoint the WAL: a
			// checkpointer does, beside them (checkpoint.go).
			a["wal_autocheckpoint"] = "0"
		}
		return a
	}
	return store{
		kind: persistenceSQLite,
		main: config.SQL{
			PluginName:        sqliteplugin.PluginName,
			DatabaseName:      filepath.Join(dir, "temporal.db"),
			ConnectAttributes: attrs(),
			MaxConns:          conns,
			MaxIdleConns:      conns,
		},
		visibility: config.SQL{
			PluginName:        sqliteplugin.PluginName,
			DatabaseName:      filepath.Join(dir, "temporal_visibility.db"),
			ConnectAttributes: attrs(),
			MaxConns:          conns,
			MaxIdleConns:      conns,
		},
		mainSchema:  "sqlite/v3/temporal",
		visSchema:   "sqlite/v3/visibility",
		mainVersion: sqliteschema.Version,
		visVersion:  sqliteschema.VisibilityVersion,
	}
}

// postgresStore parses a postgres:// URL. The database in its path (default
// "temporal") holds history; <name>_visibility holds visibility.
func postgresStore(raw string) (store, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return store{}, fmt.Errorf("--postgres-url: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return store{}, fmt.Errorf("--postgres-url %q: scheme must be postgres://", redact(u))
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return store{}, fmt.Errorf("--postgres-url %q: missing host", redact(u))
	}
	if port == "" {
		port = "5432"
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" {
		db = "temporal"
	}
	attrs := map[string]string{}
	for k, v := range u.Query() {
		if len(v) != 1 {
			return store{}, fmt.Errorf("--postgres-url: parameter %q given %d times", k, len(v))
		}
		attrs[k] = v[0]
	}
	password, _ := u.User.Password()
	base := config.SQL{
		PluginName:      postgresql.PluginNamePGX,
		ConnectAddr:     net.JoinHostPort(host, port),
		User:            u.User.Username(),
		Password:        password,
		MaxConnLifetime: time.Hour,
	}
	main, vis := base, base
	main.DatabaseName, vis.DatabaseName = db, db+"_visibility"
	// Enough connections for 4 shards x shardIOConcurrency 4 plus task
	// queues and readers, well under PostgreSQL's default max_connections 100.
	main.MaxConns, main.MaxIdleConns = 30, 30
	vis.MaxConns, vis.MaxIdleConns = 10, 10
	main.ConnectAttributes, vis.ConnectAttributes = attrs, cloneMap(attrs)
	return store{
		kind:        persistencePostgres,
		main:        main,
		visibility:  vis,
		mainSchema:  "postgresql/v12/temporal",
		visSchema:   "postgresql/v12/visibility",
		mainVersion: postgresschema.Version,
		visVersion:  postgresschema.VisibilityVersion,
	}, nil
}

func redact(u *url.URL) string { return u.Redacted() }

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// prepare creates the databases if missing and brings both schemas to the
// version this server expects, using the server's schema tool as a library.
// It is safe to run at every start.
func (s store) prepare(logger log.Logger) error {
	if s.kind == persistenceSQLite {
		if err := os.MkdirAll(filepath.Dir(s.main.DatabaseName), 0o755); err != nil {
			return fmt.Errorf("create data dir: %w", err)
		}
	}
	if err := prepareDB(s.kind, s.main, s.mainSchema, s.mainVersion, logger); err != nil {
		return fmt.Errorf("prepare %s: %w", s.main.DatabaseName, err)
	}
	if err := prepareDB(s.kind, s.visibility, s.visSchema, s.visVersion, logger); err != nil {
		return fmt.Errorf("prepare %s: %w", s.visibility.DatabaseName, err)
	}
	if s.kind == persistenceSQLite {
		if err := trimVisibilityIndexes(s.visibility, s.visSchema, logger); err != nil {
			return fmt.Errorf("trim %s: %w", s.visibility.DatabaseName, err)
		}
	}
	return nil
}

// keptVisibilityIndexes are the SQLite visibility indexes a Stampede stack
// queries through: the default listing (the Web UI, ordered by close and
// start time) and what the chaos audit and the load checker filter on
// (WorkflowType, StartTime, WorkflowId, ExecutionStatus).
var keptVisibilityIndexes = map[string]bool{
	"default_idx":       true,
	"by_execution_time": true,
	"by_workflow_id":    true,
	"by_workflow_type":  true,
	"by_status":         true,
}

// createIndexRE finds the index names in the embedded visibility schema.
var createIndexRE = regexp.MustCompile(`(?m)^\s*CREATE INDEX\s+(\w+)\s+ON executions_visibility`)

// trimVisibilityIndexes drops the SQLite visibility indexes nothing here
// queries by. The schema carries 58, one per predefined and pre-allocated
// search attribute, each over a generated JSON_EXTRACT column; every workflow
// start, first workflow task (the unversioned BuildIds attribute) and close
// rewrites the row and so every index: measured, that was about a third of
// the server's CPU per saga. A query on a dropped column still works, by a
// scan of the namespace's rows (retention is one day). The schema version is
// untouched; idempotent, so it runs at every start.
func trimVisibilityIndexes(cfg config.SQL, schemaName string, logger log.Logger) error {
	b, err := fs.ReadFile(temporalschema.Assets(), path.Join(schemaName, "schema.sql"))
	if err != nil {
		return fmt.Errorf("read embedded visibility schema: %w", err)
	}
	conn, err := sqltool.NewConnection(&cfg, logger)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	for _, m := range createIndexRE.FindAllStringSubmatch(string(b), -1) {
		if keptVisibilityIndexes[m[1]] {
			continue
		}
		if err := conn.Exec("DROP INDEX IF EXISTS " + m[1]); err != nil {
			return fmt.Errorf("drop index %s: %w", m[1], err)
		}
	}
	return nil
}

func prepareDB(kind string, cfg config.SQL, schemaName, version string, logger log.Logger) error {
	if kind == persistencePostgres {
		// CREATE DATABASE runs while connected to the maintenance database.
		c := cfg
		if err := sqltool.DoCreateDatabase(&c, "postgres", logger); err != nil {
			return fmt.Errorf("create database: %w", err)
		}
	}
	conn, err := sqltool.NewConnection(&cfg, logger)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()

	tables, err := conn.ListTables()
	if err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	switch {
	case len(tables) > 0:
		// An existing store: only the upgrade steps below apply.
	case kind == persistenceSQLite:
		// SQLite's versioned dirs start after its base schema.sql, so a new
		// file gets schema.sql stamped with the version it matches.
		err = schema.NewSetupSchemaTask(conn, &schema.SetupConfig{
			SchemaName:     schemaName,
			InitialVersion: version,
		}, logger).Run()
	default:
		// PostgreSQL: version tables at 0.0, then every versioned step below
		// (the same as temporal-sql-tool setup-schema -v 0.0 && update-schema).
		err = schema.NewSetupSchemaTask(conn, &schema.SetupConfig{InitialVersion: "0.0"}, logger).Run()
	}
	if err != nil {
		return fmt.Errorf("set up schema: %w", err)
	}
	if !hasVersionedDir(kind, schemaName) {
		return nil
	}
	if err := schema.NewUpdateSchemaTask(conn, &schema.UpdateConfig{
		DBName:     cfg.DatabaseName,
		SchemaName: schemaName,
	}, logger).Run(); err != nil {
		return fmt.Errorf("update schema: %w", err)
	}
	return nil
}

// hasVersionedDir says whether the embedded schema has upgrade steps; SQLite
// visibility has only its schema.sql.
func hasVersionedDir(kind, schemaName string) bool {
	return !(kind == persistenceSQLite && strings.HasSuffix(schemaName, "/visibility"))
}

// checkShards refuses to start when the store was created with another
// history shard count. The server itself would log a warning and silently use
// the stored count, which hides a misconfiguration.
func (s store) checkShards(ctx context.Context, want int32, clusterName string, logger log.Logger) error {
	serializer := serialization.NewSerializer()
	factory := sql.NewFactory(s.main, resolver.NewNoopResolver(), clusterName, logger, metrics.NoopMetricsHandler, serializer)
	defer factory.Close()
	st, err := factory.NewClusterMetadataStore()
	if err != nil {
		return fmt.Errorf("open cluster metadata: %w", err)
	}
	mgr := persistence.NewClusterMetadataManagerImpl(st, serializer, clusterName, logger)
	resp, err := mgr.GetCurrentClusterMetadata(ctx)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil // first start: the server records the count
	}
	if err != nil {
		return fmt.Errorf("read cluster metadata: %w", err)
	}
	if got := resp.HistoryShardCount; got != want {
		return fmt.Errorf("history shard count mismatch: the store %s was created with %d shards but %d were asked for; "+
			"the count can never change: use --history-shards %d (or STAMPEDE_TEMPORAL_HISTORY_SHARDS), or a new store",
			s.describe(), got, want, got)
	}
	return nil
}

func (s store) describe() string {
	if s.kind == persistenceSQLite {
		return s.main.DatabaseName
	}
	return fmt.Sprintf("postgres %s/%s", s.main.ConnectAddr, s.main.DatabaseName)
}

// searchAttributes are the custom search attributes every Stampede namespace
// carries, so the Web UI can find an order's saga by OrderId.
var searchAttributes = map[string]enumspb.IndexedValueType{
	"OrderId": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"UserId":  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
}

// ensureNamespace writes the namespace with its search attribute aliases
// straight into the store before the server starts, as the Temporal CLI's
// dev server does, so it is usable the moment the frontend answers. It does
// nothing if the namespace exists; ensureSearchAttributes then fills any
// attribute an older namespace lacks. The helper lives in the SQLite schema
// package but only speaks the generic SQL persistence API, so it serves
// PostgreSQL as well.
func (s store) ensureNamespace(name, clusterName string) error {
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, name, false, searchAttributes)
	if err != nil {
		return fmt.Errorf("namespace config: %w", err)
	}
	if err := sqliteschema.CreateNamespaces(&s.main, ns); err != nil {
		return fmt.Errorf("create namespace %q: %w", name, err)
	}
	return nil
}
