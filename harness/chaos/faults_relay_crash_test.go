package chaos

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stampede-dev/stampede/platform/failpoint"
)

func TestRelayCrashDiesAtTheFailpointAndComesBackClean(t *testing.T) {
	fs := newFakeStack("relay")
	var armed string
	fs.restarted = func(string) int {
		armed = os.Getenv(failpoint.Env)
		if armed == relayFailpoint {
			return 0 // dies between commit and publish
		}
		return 998
	}
	e, r := oneFault(Config{Stack: fs}, Spec{Name: "relay-crash", Kind: KindRelayCrash, Target: "relay", Duration: time.Millisecond})
	r.run(context.Background())
	if armed != relayFailpoint {
		t.Errorf("relay restarted with %s=%q, want %q", failpoint.Env, armed, relayFailpoint)
	}
	if _, set := os.LookupEnv(failpoint.Env); set {
		t.Errorf("%s left in the harness's environment", failpoint.Env)
	}
	got := r.record()
	if got.Error != "" || got.Detail != "relay restarted with "+failpoint.Env+"="+relayFailpoint+" and died at the failpoint" || got.End.IsZero() {
		t.Errorf("record %+v: want the death detailed, no error, ended", got)
	}
	if calls := fs.Calls(); fmt.Sprint(calls) != "[restart relay start relay]" || fs.Pid("relay") == 0 || len(e.broken) != 0 {
		t.Errorf("calls %v, pid %d, broken %v; want restarted armed, started clean", calls, fs.Pid("relay"), e.broken)
	}
}
