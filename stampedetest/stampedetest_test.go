package stampedetest

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestOptions(t *testing.T) {
	tests := []struct {
		name    string
		opt     Option
		wantErr string
	}{
		{"ok/parts", WithParts(Kafka, Postgres), ""},
		{"ok/image", WithImage("postgres", "postgres:16"), ""},
		{"err/unknown part", WithParts("mysql"), `unknown part "mysql"`},
		{"err/unknown image", WithImage("base", "x"), `unknown image "base"`},
		{"err/empty network", WithNetwork(""), "empty network name"},
		{"err/no workers", WithScale(0, 1), "at least one"},
		{"err/offset", WithHostPorts(0), "between 1 and 40000"},
		{"err/delivery wait", WithDeliveryWait(0), "positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := defaults()
			err := tt.opt(&s)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestPlatformBringsItsParts(t *testing.T) {
	s := defaults()
	WithParts(Platform)(&s)
	s.resolve()
	for _, p := range allParts {
		if !s.parts[p] {
			t.Errorf("WithParts(Platform) does not start %s", p)
		}
	}
	s = defaults()
	WithParts(Kafka)(&s)
	s.resolve()
	if len(s.parts) != 1 || !s.parts[Kafka] {
		t.Errorf("WithParts(Kafka) starts %v, want kafka alone", s.parts)
	}
}

func TestHostPorts(t *testing.T) {
	s := defaults()
	WithHostPorts(30000)(&s)
	for _, tt := range []struct {
		name          string
		containerPort int
		want          int
	}{
		{"orders", 8080, 38080},
		{"worker-2", 8096, 38097},
		{"orchestrator-1", 8091, 38091},
		{"kafka", kafkaPublicPort, 39092},
		{"temporal", 7233, 37233},
		{"temporal", 8233, 38233},
		{"toxiproxy", 18082, 48082},
		{"postgres", 5432, 35432},
	} {
		if got := s.hostPort(tt.name, tt.containerPort); got != tt.want {
			t.Errorf("hostPort(%s, %d) = %d, want %d", tt.name, tt.containerPort, got, tt.want)
		}
	}
	if d := defaults(); d.hostPort("orders", 8080) != 0 {
		t.Errorf("hostPort without WithHostPorts = %d, want 0 (ephemeral)", d.hostPort("orders", 8080))
	}
}

// A fixed port something else holds fails Start before any container
// starts, naming the port.
func TestPortClashNamesThePort(t *testing.T) {
	// Hold Redis's default port plus some offset, as another program would.
	var l net.Listener
	var port, offset int
	for offset = 21000; offset < 22000; offset++ {
		port = 6379 + offset
		var err error
		if l, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			break
		}
	}
	if l == nil {
		t.Skip("no free port to hold")
	}
	defer l.Close()
	_, err := start(context.Background(), t, WithParts(Redis), WithHostPorts(offset))
	if err == nil || !strings.Contains(err.Error(), "host port "+strconv.Itoa(port)) || !strings.Contains(err.Error(), "redis") {
		t.Fatalf("got %v, want an error naming host port %d of redis", err, port)
	}
}

// No engine at DOCKER_HOST: a quick error naming DOCKER_HOST and podman,
// which Start turns into a skip (or a failure when the engine is required).
func TestNoEngine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+t.TempDir()+"/no-engine.sock")
	t.Setenv(EnvRequireContainers, "")
	t0 := time.Now()
	_, err := start(context.Background(), t, WithParts(Redis))
	var ee *EngineError
	if !errors.As(err, &ee) {
		t.Fatalf("got %v, want an *EngineError", err)
	}
	for _, want := range []string{"DOCKER_HOST", "podman system service"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if ee.required {
		t.Error("engine required without RequireEngine or " + EnvRequireContainers)
	}
	if d := time.Since(t0); d > 25*time.Second {
		t.Errorf("took %s to give up: want a quick answer, not a hang", d)
	}
	_, err = start(context.Background(), t, WithParts(Redis), RequireEngine())
	if !errors.As(err, &ee) || !ee.required {
		t.Fatalf("with RequireEngine: got %v, want a required *EngineError", err)
	}
}
