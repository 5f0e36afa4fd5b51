// Package temporalclient completes the Temporal SDK client options every
// Stampede process dials with: TLS and an API key from the environment, so
// a team's own Temporal (STAMPEDE_TEMPORAL_ADDRESS) that wants either is
// reached the same way by the workers, the orchestrators, the Orders API,
// the launcher and the harness.
//
// It must never dial: it only fills in options.
package temporalclient

import (
	"fmt"
	"os"
	"strings"

	"go.temporal.io/sdk/client"

	"github.com/stampede-dev/stampede/platform/config"
)

// The environment:
//
//	STAMPEDE_TEMPORAL_TLS=1                  TLS with the system's roots
//	STAMPEDE_TEMPORAL_TLS_CA=ca.pem          ... or these CAs (turns TLS on)
//	STAMPEDE_TEMPORAL_TLS_CERT, _KEY         a client certificate (mutual TLS)
//	STAMPEDE_TEMPORAL_TLS_SERVER_NAME        the name the frontend's certificate carries
//	STAMPEDE_TEMPORAL_API_KEY                an API key (sent as a bearer; TLS unless STAMPEDE_TEMPORAL_TLS=0)
//	STAMPEDE_TEMPORAL_API_KEY_FILE           ... or the file holding it
const (
	EnvTLS        = "STAMPEDE_TEMPORAL_TLS"
	EnvAPIKey     = "STAMPEDE_TEMPORAL_API_KEY"
	EnvAPIKeyFile = "STAMPEDE_TEMPORAL_API_KEY_FILE"
)

// Options returns o with the environment's TLS and API key set. Errors name
// the variable; the key never appears in one.
func Options(o client.Options) (client.Options, error) {
	tlsCfg, err := config.TLSFromEnv(EnvTLS)
	if err != nil {
		return o, err
	}
	o.ConnectionOptions.TLS = tlsCfg
	key := os.Getenv(EnvAPIKey)
	if path := os.Getenv(EnvAPIKeyFile); key == "" && path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return o, fmt.Errorf("%s: %w", EnvAPIKeyFile, err)
		}
		if key = strings.TrimSpace(string(b)); key == "" {
			return o, fmt.Errorf("%s: %s is empty", EnvAPIKeyFile, path)
		}
	}
	if key != "" {
		o.Credentials = client.NewAPIKeyStaticCredentials(key)
		// The SDK turns TLS on for an API key; STAMPEDE_TEMPORAL_TLS=0 says
		// the frontend is plaintext (a local test server, a sidecar).
		if tlsCfg == nil && isFalse(os.Getenv(EnvTLS)) {
			o.ConnectionOptions.TLSDisabled = true
		}
	}
	return o, nil
}

func isFalse(v string) bool {
	switch strings.ToLower(v) {
	case "0", "f", "false":
		return true
	}
	return false
}
