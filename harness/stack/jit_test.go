package stack

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestReniceJITSetsOnlyTheC2Threads(t *testing.T) {
	root := t.TempDir()
	threads := map[string]string{
		"100": "java",
		"101": "C2 CompilerThre",
		"102": "C1 CompilerThre",
		"103": "data-plane-kafk",
		"104": "C2 CompilerThre",
	}
	for tid, comm := range threads {
		dir := filepath.Join(root, "100", "task", tid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "comm"), []byte(comm+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set := map[int]int{}
	n, err := reniceJIT(root, 100, func(tid, nice int) error { set[tid] = nice; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || len(set) != 2 || set[101] != NiceJIT || set[104] != NiceJIT {
		t.Fatalf("reniced %d threads: %v; want 101 and 104 at %d", n, set, NiceJIT)
	}
}

func TestReniceJITReportsWhatFails(t *testing.T) {
	if _, err := reniceJIT(t.TempDir(), 100, nil); err == nil {
		t.Fatal("no error for a process that is not there")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "7", "task", "8")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "comm"), []byte("C2 CompilerThre\n"), 0o644)
	denied := errors.New("permission denied")
	if _, err := reniceJIT(root, 7, func(int, int) error { return denied }); !errors.Is(err, denied) {
		t.Fatalf("got %v, want the setpriority error", err)
	}
}

// The real call on a real thread: this test's own process, whose main
// thread is not a JIT thread, so nothing is set.
func TestReniceJITOnThisProcess(t *testing.T) {
	n, err := reniceJIT("/proc", os.Getpid(), setThreadNice)
	if err != nil || n != 0 {
		t.Fatalf("reniceJIT(self) = %d, %v; want 0, nil", n, err)
	}
}
