package chaos

import (
	"errors"
	"testing"
	"time"
)

func TestTimeoutHangsRequests(t *testing.T) {
	breakPath(t, Spec{Name: "hang", Kind: KindTimeout, Target: "payments"},
		func(_ string, took time.Duration, err error) string {
			var ne interface{ Timeout() bool }
			if !errors.As(err, &ne) || !ne.Timeout() || took < 700*time.Millisecond {
				return "want the request to hang until the client timeout, got " + errString(err) + " after " + took.String()
			}
			return ""
		})
}
