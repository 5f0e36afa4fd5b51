package stack

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// niceOf reads a process's niceness (field 19 of /proc/PID/stat).
func niceOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The command name (field 2) may hold spaces; count from after it.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	n, err := strconv.Atoi(f[16])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestComponentRunsAtItsNiceness(t *testing.T) {
	if _, err := exec.LookPath("nice"); err != nil {
		t.Skip("no nice(1) on this machine")
	}
	for _, tc := range []struct {
		name   string
		nice   int
		env    string
		want   int
		nobody bool // run as nobody, as PostgreSQL runs as postgres
	}{
		{"background", 7, "", 7, false},
		{"normal", 0, "", 0, false},
		{"turned-off", 7, "1", 0, false},
		{"raised", -3, "", -3, false}, // needs root or CAP_SYS_NICE
		// nice(1) as nobody could not raise it; the launcher sets it.
		{"raised for another user", -3, "", -3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.nice < 0 && os.Geteuid() != 0 {
				t.Skip("raising priority needs root")
			}
			t.Setenv(EnvNoNice, tc.env)
			s := &Stack{Home: t.TempDir(), Components: []Component{{
				Name: "sleeper", Nice: tc.nice, Timeout: 5 * time.Second,
				Command: func(*Stack) (*exec.Cmd, *syscall.Credential, error) {
					if tc.nobody {
						return exec.Command("sleep", "30"), &syscall.Credential{Uid: 65534, Gid: 65534}, nil
					}
					return exec.Command("sleep", "30"), nil, nil
				},
			}}}
			if err := s.Up(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.stop("sleeper", time.Second) })
			pid := s.Pid("sleeper")
			if pid == 0 {
				t.Fatal("no pid recorded")
			}
			// Wait until the process is sleep itself (nice(1) has run).
			for i := 0; i < 100; i++ {
				if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); strings.TrimSpace(string(b)) == "sleep" {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			base := niceOf(t, os.Getpid())
			if got := niceOf(t, pid) - base; got != tc.want {
				t.Errorf("niceness above ours = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestSelectFamily: naming a family selects every member, in stack order,
// beside the components named alone; an unknown name is an error.
func TestSelectFamily(t *testing.T) {
	s := &Stack{Components: []Component{{Name: "kafka"}, {Name: "worker-1"}, {Name: "worker-2"}, {Name: "orchestrator-1"}, {Name: "orchestrator-2"}, {Name: "orders"}}}
	got, err := s.Select([]string{"worker", "orders", "orchestrator-2"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range got {
		names = append(names, c.Name)
	}
	if want := []string{"worker-1", "worker-2", "orchestrator-2", "orders"}; !slices.Equal(names, want) {
		t.Errorf("Select = %v, want %v", names, want)
	}
	if _, err := s.Select([]string{"worker", "nope"}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Select with an unknown name: err = %v", err)
	}
}

// TestServiceEnvOneProc: platform processes run with GOMAXPROCS=1 unless the
// environment sets it.
func TestServiceEnvOneProc(t *testing.T) {
	if got := serviceEnv([]string{"A=1"}); !slices.Equal(got, []string{"A=1", "GOMAXPROCS=1"}) {
		t.Errorf("serviceEnv = %v, want GOMAXPROCS=1 added", got)
	}
	if got := serviceEnv([]string{"GOMAXPROCS=2"}); !slices.Equal(got, []string{"GOMAXPROCS=2"}) {
		t.Errorf("serviceEnv = %v, want the user's GOMAXPROCS kept", got)
	}
}
