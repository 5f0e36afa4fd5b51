package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.temporal.io/server/common/dynamicconfig"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want func(o *options) // edits the defaults into what is expected
	}{
		{name: "ok/defaults", want: func(o *options) {}},
		{
			name: "ok/env beats default",
			env: map[string]string{
				"STAMPEDE_TEMPORAL_PORT":         "17233",
				"STAMPEDE_TEMPORAL_UI_PORT":      "0",
				"STAMPEDE_TEMPORAL_DATA_DIR":     "/tmp/x",
				"STAMPEDE_TEMPORAL_LOG_LEVEL":    "info",
				"STAMPEDE_TEMPORAL_NAMESPACE":    "orders",
				"STAMPEDE_TEMPORAL_METRICS_PORT": "18234",
			},
			want: func(o *options) {
				o.Port, o.UIPort, o.MetricsPort = 17233, 0, 18234
				o.DataDir, o.LogLevel, o.Namespace = "/tmp/x", "info", "orders"
			},
		},
		{
			name: "ok/flag beats env",
			args: []string{"--port", "27233", "--history-shards", "2"},
			env:  map[string]string{"STAMPEDE_TEMPORAL_PORT": "17233", "STAMPEDE_TEMPORAL_HISTORY_SHARDS": "3"},
			want: func(o *options) { o.Port, o.HistoryShards = 27233, 2 },
		},
		{
			name: "ok/postgres defaults to 4 shards",
			env: map[string]string{
				"STAMPEDE_TEMPORAL_PERSISTENCE":  "postgres",
				"STAMPEDE_TEMPORAL_POSTGRES_URL": "postgres://postgres@127.0.0.1:5432/temporal",
			},
			want: func(o *options) {
				o.Persistence, o.PostgresURL, o.HistoryShards = "postgres", "postgres://postgres@127.0.0.1:5432/temporal", 4
			},
		},
		{
			name: "ok/dynamic config flags replace env",
			args: []string{"--dynamic-config", "a=1", "--dynamic-config", "b=true"},
			env:  map[string]string{"STAMPEDE_TEMPORAL_DYNAMIC_CONFIG": "c=2 d=3"},
			want: func(o *options) { o.DynamicConfig = []string{"a=1", "b=true"} },
		},
		{
			name: "ok/listen-all in a container keeps --ip for the internal services",
			args: []string{"--listen-all"},
			want: func(o *options) { o.ListenAll = true },
		},
		{
			name: "ok/listen-all from env",
			env:  map[string]string{"STAMPEDE_TEMPORAL_LISTEN_ALL": "1"},
			want: func(o *options) { o.ListenAll = true },
		},
		{
			name: "ok/sqlite connections from env",
			env:  map[string]string{"STAMPEDE_TEMPORAL_SQLITE_CONNS": "1"},
			want: func(o *options) { o.SQLiteConns = 1 },
		},
		{
			name: "ok/write-lock boost off from env",
			env:  map[string]string{"STAMPEDE_TEMPORAL_WRITE_LOCK_BOOST": "0"},
			want: func(o *options) { o.LockBoost = 0 },
		},
		{
			name: "ok/dynamic config from env",
			env:  map[string]string{"STAMPEDE_TEMPORAL_DYNAMIC_CONFIG": "c=2 d=3"},
			want: func(o *options) { o.DynamicConfig = []string{"c=2", "d=3"} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := options{
				IP: "127.0.0.1", Port: 7233, UIPort: 8233, MetricsPort: 8234,
				DataDir: ".stampede/data/temporal", Persistence: "sqlite", HistoryShards: 1, SQLiteConns: 4, LockBoost: 5,
				Namespace: "default", LogLevel: "warn",
			}
			tt.want(&want)
			got, err := parseOptions(tt.args, envOf(tt.env), io.Discard)
			if err != nil {
				t.Fatalf("parseOptions: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			if wantBind := map[bool]string{true: "0.0.0.0", false: "127.0.0.1"}[want.ListenAll]; got.bindIP() != wantBind {
				t.Errorf("bindIP() = %q, want %q", got.bindIP(), wantBind)
			}
		})
	}
}

func TestParseOptionsErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{"err/non-loopback ip", []string{"--ip", "0.0.0.0"}, nil, "only loopback"},
		{"err/bad env number", nil, map[string]string{"STAMPEDE_TEMPORAL_PORT": "x"}, "STAMPEDE_TEMPORAL_PORT"},
		{"err/same port twice", []string{"--ui-port", "7233"}, nil, "already used by --port"},
		{"err/postgres without url", []string{"--persistence", "postgres"}, nil, "--postgres-url is required"},
		{"err/unknown persistence", []string{"--persistence", "mysql"}, nil, "want sqlite or postgres"},
		{"err/bad log level", []string{"--log-level", "loud"}, nil, "--log-level"},
		{"err/bad dynamic config", []string{"--dynamic-config", "novalue"}, nil, "want KEY=VALUE"},
		{"err/negative shards", []string{"--history-shards", "-1"}, nil, "at least 1"},
		{"err/no sqlite connection", []string{"--sqlite-conns", "0"}, nil, "--sqlite-conns 0: want 1 to 64"},
		{"err/negative lock boost", []string{"--write-lock-boost", "-1"}, nil, "--write-lock-boost -1: want 0 to 39"},
		{"err/stray argument", []string{"serve"}, nil, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseOptions(tt.args, envOf(tt.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseOptionsHelp(t *testing.T) {
	var out strings.Builder
	_, err := parseOptions([]string{"--help"}, envOf(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("got error %v, want flag.ErrHelp", err)
	}
	for _, env := range []string{
		"STAMPEDE_TEMPORAL_IP", "STAMPEDE_TEMPORAL_PORT", "STAMPEDE_TEMPORAL_UI_PORT",
		"STAMPEDE_TEMPORAL_METRICS_PORT", "STAMPEDE_TEMPORAL_DATA_DIR", "STAMPEDE_TEMPORAL_PERSISTENCE",
		"STAMPEDE_TEMPORAL_POSTGRES_URL", "STAMPEDE_TEMPORAL_HISTORY_SHARDS", "STAMPEDE_TEMPORAL_NAMESPACE",
		"STAMPEDE_TEMPORAL_LOG_LEVEL", "STAMPEDE_TEMPORAL_DYNAMIC_CONFIG",
	} {
		if !strings.Contains(out.String(), env) {
			t.Errorf("--help does not mention %s", env)
		}
	}
}

func TestBuildDynamicConfig(t *testing.T) {
	tests := []struct {
		name        string
		persistence string
		overrides   []string
		key         string
		want        any
	}{
		{"ok/tuned partitions", "sqlite", nil, "matching.numTaskqueueReadPartitions", 1},
		{"ok/sqlite shard io concurrency follows its connections", "sqlite", nil, "history.shardIOConcurrency", 4},
		{"ok/sqlite on one connection", "sqlite1", nil, "history.shardIOConcurrency", 1},
		{"ok/postgres shard io concurrency", "postgres", nil, "history.shardIOConcurrency", 4},
		{"ok/override wins", "postgres", []string{"history.shardIOConcurrency=8"}, "history.shardIOConcurrency", 8},
		{"ok/override is yaml bool", "sqlite", []string{"system.enableActivityEagerExecution=false"}, "system.enableActivityEagerExecution", false},
		{"ok/override is yaml string", "sqlite", []string{"history.shardIOTimeout=30s"}, "history.shardIOTimeout", "30s"},
		{"ok/tuned duration", "sqlite", nil, "history.shardIOTimeout", 15 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			persistence, conns := tt.persistence, defaultSQLiteConns
			if persistence == "sqlite1" {
				persistence, conns = persistenceSQLite, 1
			}
			dc, err := buildDynamicConfig(persistence, conns, tt.overrides)
			if err != nil {
				t.Fatalf("buildDynamicConfig: %v", err)
			}
			got := dc[dynamicconfig.MakeKey(tt.key)]
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s: got %#v, want %#v", tt.key, got, tt.want)
			}
		})
	}
}

func TestPostgresStore(t *testing.T) {
	st, err := postgresStore("postgres://app:secret@127.0.0.1:15432/tmp_temporal?sslmode=disable")
	if err != nil {
		t.Fatalf("postgresStore: %v", err)
	}
	checks := []struct{ name, got, want string }{
		{"addr", st.main.ConnectAddr, "127.0.0.1:15432"},
		{"user", st.main.User, "app"},
		{"password", st.main.Password, "secret"},
		{"main db", st.main.DatabaseName, "tmp_temporal"},
		{"visibility db", st.visibility.DatabaseName, "tmp_temporal_visibility"},
		{"sslmode", st.visibility.ConnectAttributes["sslmode"], "disable"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
	for _, bad := range []string{"mysql://x@127.0.0.1/t", "postgres:///temporal"} {
		if _, err := postgresStore(bad); err == nil {
			t.Errorf("postgresStore(%q): got no error, want one", bad)
		}
	}
}

func TestReadinessGate(t *testing.T) {
	var gate readiness
	info := &grpc.UnaryServerInfo{FullMethod: healthpb.Health_Check_FullMethodName}
	serving := func(context.Context, any) (any, error) {
		return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
	}
	status := func() healthpb.HealthCheckResponse_ServingStatus {
		resp, err := gate.intercept(context.Background(), &healthpb.HealthCheckRequest{}, info, serving)
		if err != nil {
			t.Fatalf("intercept: %v", err)
		}
		return resp.(*healthpb.HealthCheckResponse).GetStatus()
	}
	if got, want := status(), healthpb.HealthCheckResponse_NOT_SERVING; got != want {
		t.Errorf("before ready: got %s, want %s", got, want)
	}
	other := &grpc.UnaryServerInfo{FullMethod: "/temporal.api.workflowservice.v1.WorkflowService/DescribeNamespace"}
	if _, err := gate.intercept(context.Background(), nil, other, serving); err != nil {
		t.Errorf("other calls before ready: got %v, want them passed through", err)
	}
	gate.ready.Store(true)
	if got, want := status(), healthpb.HealthCheckResponse_SERVING; got != want {
		t.Errorf("after ready: got %s, want %s", got, want)
	}
}
