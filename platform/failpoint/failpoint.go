// Package failpoint lets the chaos harness and the crash tests kill a process
// at an exact point of its work (for example between a database commit and a
// Kafka publish), which no external signal can hit reliably.
//
// A failpoint is armed by listing its name in STAMPEDE_FAILPOINTS
// (comma-separated). An armed failpoint SIGKILLs its own process: no deferred
// cleanup runs, exactly like a crash. Unarmed failpoints cost one map lookup.
package failpoint

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
)

// Env is the variable that arms failpoints.
const Env = "STAMPEDE_FAILPOINTS"

var (
	once  sync.Once
	armed map[string]bool
)

func load() {
	armed = map[string]bool{}
	for _, n := range strings.Split(os.Getenv(Env), ",") {
		if n = strings.TrimSpace(n); n != "" {
			armed[n] = true
		}
	}
}

// Armed reports whether the named failpoint is armed.
func Armed(name string) bool {
	once.Do(load)
	return armed[name]
}

// Hit kills the process with SIGKILL if the named failpoint is armed.
func Hit(name string) {
	if !Armed(name) {
		return
	}
	fmt.Fprintf(os.Stderr, "failpoint %s hit: killing process %d\n", name, os.Getpid())
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is asynchronous; never run past the failpoint
}
