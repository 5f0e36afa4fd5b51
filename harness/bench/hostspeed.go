package bench

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// HostSpeed is how much fixed work one thread of this host does per second
// of its own CPU time, in thousands of units: a unit is what an order's
// processes do most (encode a small JSON document, hash it, look it up in a
// map). The CPU time the figures of `bench cost` and `chaos` are made of
// buys more or less of it from one hour to the next on a shared VM (on
// 2026-12-07 the same code cost 58 and 100 ms a saga on the same host), so
// each figure is printed beside this one: a cost that rose with the host's
// speed unchanged is the code's.
type HostSpeed struct {
	// KUnitsPerCPUSecond is the median of the rounds.
	KUnitsPerCPUSecond float64 `json:"kUnitsPerCpuSecond"`
	// KRoundTripsPerCPUSecond is the same for the kernel's side: 64-byte
	// writes and reads through a Unix socket pair, what every process of
	// the stack does most besides computing. A host whose kernel entry got
	// dearer (another CPU model, other mitigations) shows here and not above.
	KRoundTripsPerCPUSecond float64 `json:"kRoundTripsPerCpuSecond"`
	Rounds                  int     `json:"rounds"`
}

func (h HostSpeed) String() string {
	if h.Rounds == 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.0fk units and %.0fk socket round trips per CPU-second (median of %d rounds)",
		h.KUnitsPerCPUSecond, h.KRoundTripsPerCPUSecond, h.Rounds)
}

// speedDoc is the unit's document, the size of an order event.
type speedDoc struct {
	OrderID string   `json:"orderId"`
	UserID  string   `json:"userId"`
	Status  string   `json:"status"`
	Amount  int64    `json:"amountCents"`
	Items   []string `json:"items"`
	Seq     int      `json:"seq"`
}

// speedUnits does n units of work and returns a value that depends on all of
// them, so the compiler cannot drop any.
func speedUnits(n int) uint64 {
	seen := make(map[[sha256.Size]byte]int, 64)
	doc := speedDoc{OrderID: "order-0000", UserID: "user-42", Status: "payment_captured", Amount: 12345,
		Items: []string{"sku-1", "sku-2", "sku-3"}}
	var acc uint64
	for i := range n {
		doc.Seq = i
		doc.OrderID = "order-" + strconv.Itoa(i%1000)
		b, _ := json.Marshal(doc)
		sum := sha256.Sum256(b)
		if len(seen) > 4096 {
			clear(seen)
		}
		seen[sum]++
		acc += uint64(sum[0]) + uint64(len(seen))
	}
	return acc
}

// roundTrips writes and reads 64 bytes n times through a socket pair.
func roundTrips(fds [2]int, n int) error {
	var buf [64]byte
	for range n {
		if _, err := syscall.Write(fds[0], buf[:]); err != nil {
			return err
		}
		if _, err := syscall.Read(fds[1], buf[:]); err != nil {
			return err
		}
	}
	return nil
}

// threadCPU is the CPU time of the calling OS thread, from
// CLOCK_THREAD_CPUTIME_ID: the scheduler's own nanosecond count.
// getrusage(RUSAGE_THREAD) is not used: on tick-accounted kernels it moves
// in steps of a scheduler tick (4 ms here), so a short round could read 0.
func threadCPU() (time.Duration, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}

// MeasureHostSpeed runs rounds of fixed work, each about d of CPU, on one
// locked OS thread, then as many rounds of socket round trips, and returns
// the median speed of each. It counts the thread's own
// CPU time, not the wall clock, so other load on the host only makes it
// take longer, not read lower (what it does measure is how much work a
// second of CPU buys: the CPU's clock and what its neighbours leave of its
// caches). The zero HostSpeed when the thread's time cannot be read.
func MeasureHostSpeed(rounds int, d time.Duration) HostSpeed {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return HostSpeed{}
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	work := func(n int) { speedUnits(n) }
	trips := func(n int) { roundTrips([2]int(fds), n) }
	units, ok1 := kPerCPUSecond(work, rounds, d)
	rts, ok2 := kPerCPUSecond(trips, rounds, d)
	if !ok1 || !ok2 {
		return HostSpeed{}
	}
	return HostSpeed{KUnitsPerCPUSecond: units, KRoundTripsPerCPUSecond: rts, Rounds: rounds}
}

// kPerCPUSecond sizes do(n) to about a tenth of d of the thread's CPU, then
// runs rounds, each repeating do(n) until the thread's clock has moved by at
// least d, and returns the median of thousands of n per CPU-second. A round
// ends on the clock, not on a count, so a coarse clock only makes rounds
// longer, never zero. False when the clock cannot be read or does not move
// within a wall-time bound (a round is given 100 d).
func kPerCPUSecond(do func(n int), rounds int, d time.Duration) (float64, bool) {
	n := 100
	for {
		c0, ok := threadCPU()
		if !ok {
			return 0, false
		}
		do(n)
		c1, _ := threadCPU()
		if c1-c0 >= d/10 || n >= 1<<24 {
			break
		}
		n *= 4
	}
	var speeds []float64
	for range rounds {
		deadline := time.Now().Add(100 * d)
		c0, _ := threadCPU()
		done, cpu := 0, time.Duration(0)
		for cpu < d {
			if time.Now().After(deadline) {
				return 0, false
			}
			do(n)
			done += n
			c1, _ := threadCPU()
			cpu = c1 - c0
		}
		speeds = append(speeds, float64(done)/cpu.Seconds()/1000)
	}
	return median(speeds), true
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
