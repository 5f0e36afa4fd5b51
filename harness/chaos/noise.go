package chaos

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"time"

	"github.com/stampede-dev/stampede/harness/report"
)

// Noise is a busy neighbour on purpose: another process that burns Cores
// cores at normal priority for the whole load, so a run shows whether its
// verdict holds on a CI host that is doing something else too. It is
// `stampede noise`, which stops by itself after its time limit even if the
// harness dies.
type Noise struct {
	Cores float64
	cmd   *exec.Cmd
	start time.Time
}

// StartNoise runs bin (the stampede binary) as `noise --cores N --for limit`.
func StartNoise(ctx context.Context, bin string, cores float64, limit time.Duration) (*Noise, error) {
	if cores <= 0 {
		return nil, nil
	}
	cmd := exec.CommandContext(ctx, bin, "noise", "--cores", strconv.FormatFloat(cores, 'f', -1, 64), "--for", limit.String())
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the CPU hog: %w", err)
	}
	return &Noise{Cores: cores, cmd: cmd, start: time.Now()}, nil
}

// Stop ends the hog and reports what it used.
func (n *Noise) Stop() *report.NoiseReport {
	if n == nil {
		return nil
	}
	r := &report.NoiseReport{Cores: n.Cores}
	_ = n.cmd.Process.Kill()
	_ = n.cmd.Wait() // killed: the error is the signal
	r.Wall = time.Since(n.start)
	if ps := n.cmd.ProcessState; ps != nil {
		r.CPU = ps.UserTime() + ps.SystemTime()
	}
	if r.Wall > 0 {
		r.CoresUsed = r.CPU.Seconds() / r.Wall.Seconds()
	}
	return r
}

// Burn keeps cores cores busy until ctx ends or limit passes: whole cores
// spin, a fraction spins that share of every 10 ms. It is the body of
// `stampede noise`.
func Burn(ctx context.Context, cores float64, limit time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	done := make(chan struct{})
	n := 0
	for left := cores; left > 0; left-- {
		share := min(left, 1)
		n++
		go func() {
			defer func() { done <- struct{}{} }()
			spin(ctx, share)
		}()
	}
	for ; n > 0; n-- {
		<-done
	}
}

func spin(ctx context.Context, share float64) {
	const period = 10 * time.Millisecond
	busy := time.Duration(share * float64(period))
	x := uint64(1)
	for ctx.Err() == nil {
		end := time.Now().Add(busy)
		for time.Now().Before(end) {
			for i := 0; i < 1000; i++ {
				x = x*6364136223846793005 + 1442695040888963407
			}
		}
		if rest := period - busy; rest > 0 {
			time.Sleep(rest)
		}
	}
	sink = x
}

var sink uint64
