package temporalclient

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"
)

func TestOptions(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, []byte("file-key\n"), 0o600)
	tests := []struct {
		name        string
		env         map[string]string
		tls, apiKey bool
		tlsDisabled bool
		wantErr     string
	}{
		{name: "ok/nothing set", env: map[string]string{}},
		{name: "ok/tls", env: map[string]string{EnvTLS: "1", EnvTLS + "_SERVER_NAME": "temporal.internal"}, tls: true},
		{name: "ok/api key", env: map[string]string{EnvAPIKey: "k"}, apiKey: true},
		{name: "ok/api key from file over tls", env: map[string]string{EnvAPIKeyFile: keyFile, EnvTLS: "true"}, apiKey: true, tls: true},
		{name: "ok/api key on plaintext", env: map[string]string{EnvAPIKey: "k", EnvTLS: "0"}, apiKey: true, tlsDisabled: true},
		{name: "err/missing key file", env: map[string]string{EnvAPIKeyFile: "/nonexistent"}, wantErr: EnvAPIKeyFile},
		{name: "err/bad tls flag", env: map[string]string{EnvTLS: "maybe"}, wantErr: EnvTLS},
		{name: "err/missing CA", env: map[string]string{EnvTLS + "_CA": "/nonexistent.pem"}, wantErr: EnvTLS + "_CA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{EnvTLS, EnvTLS + "_CA", EnvTLS + "_CERT", EnvTLS + "_KEY", EnvTLS + "_SERVER_NAME", EnvAPIKey, EnvAPIKeyFile, EnvGzip} {
				t.Setenv(k, tt.env[k])
			}
			o, err := Options(client.Options{HostPort: "h:1"})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.HostPort != "h:1" {
				t.Errorf("HostPort = %q: the caller's options were lost", o.HostPort)
			}
			if got := o.ConnectionOptions.TLS != nil; got != tt.tls {
				t.Errorf("TLS = %v, want %v", got, tt.tls)
			}
			if got := o.Credentials != nil; got != tt.apiKey {
				t.Errorf("API key credentials = %v, want %v", got, tt.apiKey)
			}
			if o.ConnectionOptions.TLSDisabled != tt.tlsDisabled {
				t.Errorf("TLSDisabled = %v, want %v", o.ConnectionOptions.TLSDisabled, tt.tlsDisabled)
			}
		})
	}
}

func TestGzipOnlyOffThisHost(t *testing.T) {
	for _, tt := range []struct {
		hostPort, env string
		gzip          bool
	}{
		{"127.0.0.1:7233", "", false},
		{"localhost:7233", "", false},
		{"[::1]:7233", "", false},
		{"127.0.0.1", "", false},
		{"temporal.internal:7233", "", true},
		{"10.0.0.5:7233", "", true},
		{"127.0.0.1:7233", "1", true},
		{"temporal.internal:7233", "0", false},
	} {
		t.Setenv(EnvGzip, tt.env)
		o, err := Options(client.Options{HostPort: tt.hostPort})
		if err != nil {
			t.Fatalf("%s (%s=%q): %v", tt.hostPort, EnvGzip, tt.env, err)
		}
		_, none := o.ConnectionOptions.GrpcCompression.(*client.GrpcCompressionNone)
		if none == tt.gzip {
			t.Errorf("%s (%s=%q): compression %T, want gzip %v", tt.hostPort, EnvGzip, tt.env, o.ConnectionOptions.GrpcCompression, tt.gzip)
		}
	}
	t.Setenv(EnvGzip, "maybe")
	if _, err := Options(client.Options{HostPort: "127.0.0.1:7233"}); err == nil || !strings.Contains(err.Error(), EnvGzip) {
		t.Fatalf("err = %v, want one naming %s", err, EnvGzip)
	}
	// A caller's own choice stands.
	t.Setenv(EnvGzip, "")
	o, _ := Options(client.Options{HostPort: "127.0.0.1:7233", ConnectionOptions: client.ConnectionOptions{GrpcCompression: &client.GrpcCompressionGzip{}}})
	if _, gz := o.ConnectionOptions.GrpcCompression.(*client.GrpcCompressionGzip); !gz {
		t.Errorf("the caller's gzip was replaced by %T", o.ConnectionOptions.GrpcCompression)
	}
}
