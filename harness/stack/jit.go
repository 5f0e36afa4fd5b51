package stack

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// NiceJIT is the niceness of the broker JVM's optimizing compiler (C2).
//
// A fresh Kafka broker spends nearly half its CPU compiling itself: measured
// with jstat and /proc/<pid>/task on this project's 2-core machine, C2 took
// 24.6 of the broker's first 62 CPU-seconds (C1: 3.9), and it was still
// compiling minutes later, through a chaos run's 20/s peak. HotSpot compiles
// in the background (requests keep running the C1 code meanwhile), so C2
// needs no share of a full host: at the lowest priority it compiles in the
// host's idle time, and the broker's request threads keep the intake
// priority the rest of the JVM runs at.
const NiceJIT = 19

// c2Thread is the comm of the JVM threads NiceJIT applies to
// ("C2 CompilerThread0", cut to 15 characters by the kernel).
const c2Thread = "C2 CompilerThre"

// reniceJIT sets NiceJIT on every C2 compiler thread of the JVM pid, as
// /proc (under procRoot) lists them, through setprio(tid, nice). The broker
// runs with -XX:-UseDynamicNumberOfCompilerThreads, so the threads it has
// once ready are all it will have. It returns how many threads it set.
func reniceJIT(procRoot string, pid int, setprio func(tid, nice int) error) (int, error) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(dir, t.Name(), "comm"))
		if err != nil {
			continue // the thread ended
		}
		if !strings.HasPrefix(string(comm), c2Thread) {
			continue
		}
		if err := setprio(tid, NiceJIT); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// setThreadNice sets the niceness of one thread (Linux keeps it per thread).
func setThreadNice(tid, nice int) error {
	return syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice)
}
