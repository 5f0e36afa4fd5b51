package chaos

import (
	"errors"
	"io"
	"syscall"
	"testing"
	"time"
)

func TestResetPeerResetsConnections(t *testing.T) {
	breakPath(t, Spec{Name: "reset", Kind: KindResetPeer, Target: "payments"},
		func(_ string, _ time.Duration, err error) string {
			if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				return "want connection reset, got " + errString(err)
			}
			return ""
		})
}
