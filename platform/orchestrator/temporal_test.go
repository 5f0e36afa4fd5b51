package orchestrator

import (
	"errors"
	"testing"

	"go.temporal.io/api/serviceerror"
)

func TestRefusedMarksOnlyInvalidArguments(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{serviceerror.NewInvalidArgument("WorkflowId length exceeds limit."), true},
		{serviceerror.NewUnavailable("connection refused"), false},
		{serviceerror.NewResourceExhausted(0, "rps limit"), false},
		{errors.New("context deadline exceeded"), false},
	} {
		if got := errors.Is(refused(tc.err), ErrRefused); got != tc.want {
			t.Errorf("refused(%v) is ErrRefused = %v, want %v", tc.err, got, tc.want)
		}
	}
	if refused(nil) != nil {
		t.Error("refused(nil) != nil")
	}
}
