package stampedetest

import (
	"context"
	"net"
	"os"
	"os/exec"
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

// No engine at DOCKER_HOST: Start skips the test quickly, naming
// DOCKER_HOST and podman, or fails it when the engine is required. It runs
// in a child process: testcontainers settles on its Docker host once per
// process.
func TestNoEngine(t *testing.T) {
	for _, tt := range []struct {
		name, require, want string
		wantFail            bool
	}{
		{"skips", "", "--- SKIP: TestNoEngineChild", false},
		{"fails when required", "1", "--- FAIL: TestNoEngineChild", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run", "^TestNoEngineChild$", "-test.v")
			cmd.Env = append(os.Environ(), "STAMPEDE_TEST_NO_ENGINE_CHILD=1",
				"DOCKER_HOST=unix://"+t.TempDir()+"/no-engine.sock", EnvRequireContainers+"="+tt.require)
			t0 := time.Now()
			out, err := cmd.CombinedOutput()
			if (err != nil) != tt.wantFail {
				t.Errorf("child exited with %v, want failure %v", err, tt.wantFail)
			}
			for _, want := range []string{tt.want, "DOCKER_HOST unix://", "podman system service"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("child output lacks %q:\n%s", want, out)
				}
			}
			if d := time.Since(t0); d > 30*time.Second {
				t.Errorf("took %s to give up: want a quick answer, not a hang", d)
			}
		})
	}
}

func TestNoEngineChild(t *testing.T) {
	if os.Getenv("STAMPEDE_TEST_NO_ENGINE_CHILD") != "1" {
		t.Skip("run by TestNoEngine")
	}
	Start(context.Background(), t, WithParts(Redis))
	t.Error("Start returned without an engine")
}

// An image that is not built fails at once, naming it and `make images`,
// instead of a pull from a registry that may not answer.
func TestMissingImageIsNamed(t *testing.T) {
	cli, err := engine(context.Background())
	if err != nil {
		t.Skipf("no container engine: %v", err)
	}
	cli.Close()
	t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	_, err = start(context.Background(), t, WithParts(Redis), WithImage("redis", "localhost/stampede/not-built:0"))
	if err == nil || !strings.Contains(err.Error(), "localhost/stampede/not-built:0") || !strings.Contains(err.Error(), "make images") {
		t.Fatalf("got %v, want an error naming the image and make images", err)
	}
}
