package config

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestPortFromEnv(t *testing.T) {
	t.Setenv("STAMPEDE_ORDERS_PORT", "18080")
	if got, want := Port(Orders), 18080; got != want {
		t.Fatalf("Port(orders) = %d, want %d", got, want)
	}
	if got, want := Addr(Orders), "127.0.0.1:18080"; got != want {
		t.Fatalf("Addr(orders) = %q, want %q", got, want)
	}
}

func TestValidateNamesBadPort(t *testing.T) {
	t.Setenv("STAMPEDE_REDIS_PORT", "seventy")
	err := Validate()
	if err == nil || !strings.Contains(err.Error(), "STAMPEDE_REDIS_PORT") {
		t.Fatalf("Validate() = %v, want an error naming STAMPEDE_REDIS_PORT", err)
	}
}

func TestPaymentsGoThroughProxy(t *testing.T) {
	if got, want := ServiceURL(Payments), "http://127.0.0.1:18082"; got != want {
		t.Fatalf("ServiceURL(payments) = %q, want %q", got, want)
	}
	t.Setenv("STAMPEDE_PAYMENTS_URL", "http://127.0.0.1:8082/")
	if got, want := ServiceURL(Payments), "http://127.0.0.1:8082"; got != want {
		t.Fatalf("ServiceURL(payments) with override = %q, want %q", got, want)
	}
}

func TestExternal(t *testing.T) {
	if External(Kafka) {
		t.Fatal("kafka external without STAMPEDE_KAFKA_BROKERS")
	}
	t.Setenv(EnvKafkaBrokers, "10.0.0.1:9092, 10.0.0.2:9092")
	if !External(Kafka) {
		t.Fatal("kafka not external with STAMPEDE_KAFKA_BROKERS")
	}
	if got := KafkaBrokers(); len(got) != 2 || got[1] != "10.0.0.2:9092" {
		t.Fatalf("KafkaBrokers() = %q", got)
	}
}

func TestFlagSetPrecedence(t *testing.T) {
	tests := []struct {
		name    string
		env     string
		args    []string
		want    time.Duration
		wantErr string
	}{
		{name: "ok/default", want: time.Second},
		{name: "ok/env", env: "3s", want: 3 * time.Second},
		{name: "ok/flag beats env", env: "3s", args: []string{"--wait", "5s"}, want: 5 * time.Second},
		{name: "err/bad env names the variable", env: "soon", wantErr: "STAMPEDE_TEST_WAIT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("STAMPEDE_TEST_WAIT", tt.env)
			}
			fs := NewFlagSet("test", "")
			var got time.Duration
			fs.DurationVar(&got, "wait", "STAMPEDE_TEST_WAIT", time.Second, "how long")
			err := fs.Parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("wait = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUsageListsEnv(t *testing.T) {
	fs := NewFlagSet("stampede serve x", "Serves x.")
	var s string
	fs.StringVar(&s, "name", "STAMPEDE_X_NAME", "x", "the name")
	var buf bytes.Buffer
	fs.PrintUsage(&buf)
	for _, want := range []string{"Serves x.", "--name", "env: STAMPEDE_X_NAME", "(default x)"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestPortOffset(t *testing.T) {
	t.Setenv(EnvPortOffset, "20000")
	t.Setenv("STAMPEDE_REDIS_PORT", "7000")
	if got, want := Port(Kafka), 29092; got != want {
		t.Errorf("Port(kafka) with offset = %d, want %d", got, want)
	}
	if got, want := Port(Redis), 7000; got != want {
		t.Errorf("Port(redis) with explicit port = %d, want %d (explicit beats offset)", got, want)
	}
	t.Setenv(EnvPortOffset, "-5")
	if err := Validate(); err == nil || !strings.Contains(err.Error(), EnvPortOffset) {
		t.Errorf("Validate() = %v, want an error naming %s", err, EnvPortOffset)
	}
}

func TestListenHost(t *testing.T) {
	if got, want := ListenAddr(8080), "127.0.0.1:8080"; got != want {
		t.Errorf("ListenAddr(8080) = %q, want %q (loopback unless told)", got, want)
	}
	t.Setenv(EnvListenHost, "0.0.0.0")
	if got, want := ListenAddr(8080), "0.0.0.0:8080"; got != want {
		t.Errorf("ListenAddr(8080) with %s = %q, want %q", EnvListenHost, got, want)
	}
	if got, want := Addr(Orders), "127.0.0.1:8080"; got != want {
		t.Errorf("Addr(orders) = %q, want %q: clients keep loopback", got, want)
	}
}
