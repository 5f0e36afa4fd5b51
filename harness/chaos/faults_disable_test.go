package chaos

import (
	"errors"
	"syscall"
	"testing"
	"time"
)

func TestDisableRefusesConnections(t *testing.T) {
	breakPath(t, Spec{Name: "refused", Kind: KindDisable, Target: "payments"},
		func(_ string, _ time.Duration, err error) string {
			if !errors.Is(err, syscall.ECONNREFUSED) {
				return "want connection refused, got " + errString(err)
			}
			return ""
		})
}
