package main

import (
	"runtime"
	"sync/atomic"
	"syscall"
)

// The write lock (writelock.go) is the server's one bottleneck: every
// workflow start, signal and saga step writes through it, one at a time. A
// transaction holds it for a millisecond or two of CPU, but on a full host
// the holder's thread can lose its CPU to any other process of the same
// priority (Kafka, PostgreSQL, the orchestrators run beside it at the same
// niceness), and then every writer waits for it: in short chaos runs a
// start waited 50-120 ms behind one such hold (README, "Chaos"). This is
// priority inversion across processes, and the remedy is the textbook one,
// the priority ceiling: the goroutine that holds the lock runs pinned to its
// thread, and that thread runs some nice levels above the process for the
// length of the hold. Nothing else of the server is raised, so saga progress
// outside the lock still waits behind the rest of the intake.
//
// Raising a thread's priority needs CAP_SYS_NICE (root) or RLIMIT_NICE; when
// the first attempt is refused the boost turns itself off for good, and the
// lock works as before.

// EnvWriteLockBoost is the environment variable of --write-lock-boost.
const EnvWriteLockBoost = "STAMPEDE_TEMPORAL_WRITE_LOCK_BOOST"

// defaultWriteLockBoost: nice -5 -> -10 for the stack's Temporal, about
// three times the CPU weight of the processes beside it.
const defaultWriteLockBoost = 5

// writeLockBoost is how many nice levels above its own the holder's thread
// runs; 0 is off. Set once by main before the server opens its stores.
var writeLockBoost atomic.Int32

// boostRefused is set when the kernel refused a raise: no more tries.
var boostRefused atomic.Bool

// boost is one raised thread: tid ran at nice old before the hold.
type boost struct {
	tid, old int
	raised   bool
}

// raise pins the calling goroutine to its thread and raises the thread's
// priority by writeLockBoost levels (bounded by -20). The zero boost, when
// off or refused, does nothing at restore.
func raise() boost {
	by := int(writeLockBoost.Load())
	if by <= 0 || boostRefused.Load() {
		return boost{}
	}
	runtime.LockOSThread()
	tid := syscall.Gettid()
	old, err := threadNice(tid)
	if err != nil {
		runtime.UnlockOSThread()
		return boost{}
	}
	target := max(old-by, -20)
	if target == old {
		runtime.UnlockOSThread()
		return boost{}
	}
	if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, target); err != nil {
		boostRefused.Store(true)
		runtime.UnlockOSThread()
		return boost{}
	}
	return boost{tid: tid, old: old, raised: true}
}

// restore puts the thread back at its niceness and unpins the goroutine.
// database/sql may roll a transaction back from another goroutine (its
// context ended): then only the thread's niceness is restored, and the
// holder stays pinned until it ends (a pinned goroutine's thread runs
// nothing else, so the tid tells whether this is the holder).
func (b boost) restore() {
	if !b.raised {
		return
	}
	syscall.Setpriority(syscall.PRIO_PROCESS, b.tid, b.old)
	if syscall.Gettid() == b.tid {
		runtime.UnlockOSThread()
	}
}

// threadNice is the niceness of thread tid. The raw getpriority system call
// answers 20 - nice so that it never looks like an error.
func threadNice(tid int) (int, error) {
	p, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
	if err != nil {
		return 0, err
	}
	return 20 - p, nil
}
