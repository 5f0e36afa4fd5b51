// Package stack starts, health-checks and stops the whole Stampede platform
// on loopback as real processes: Kafka, Temporal, PostgreSQL, Redis,
// toxiproxy and the platform's own services. Each gets its log in
// .stampede/logs/NAME.log, its data in .stampede/data/NAME and its pid in
// .stampede/run/NAME.pid; `down` stops exactly what `up` started.
//
// It must never touch a process it did not start, nor bind anything but
// 127.0.0.1.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// Component is one process of the stack.
type Component struct {
	Name string
	// Port is the port the component listens on (checked free before start,
	// shown by status); Ports are any others it binds.
	Port  int
	Ports []int
	// External, when set, is the address of infrastructure someone else runs:
	// the component is not started, only checked.
	External string
	// Prepare installs or initialises what the component needs (idempotent).
	Prepare func(ctx context.Context, s *Stack) error
	// Command returns the process to start, and the user to run it as (nil: ours).
	Command func(s *Stack) (*exec.Cmd, *syscall.Credential, error)
	// Ready returns nil once the component serves.
	Ready   func(ctx context.Context) error
	Timeout time.Duration
	// After runs once the component is ready, on every up (idempotent).
	After func(ctx context.Context, s *Stack) error
	// MetricsAddr is host:port of its Prometheus /metrics endpoint, when it has one.
	MetricsAddr string
	// ScrapeInterval, when set, is how often Prometheus scrapes it instead
	// of the stack's ScrapeInterval.
	ScrapeInterval time.Duration
	// Nice is the CPU niceness the process runs at (0: normal). Background
	// work (saga progress, notifications, analytics) runs below the intake
	// path (Orders, relay, Kafka, Temporal, orchestrators), so that on a
	// shared machine a recovery burst of sagas cannot starve order intake.
	Nice int
}

// EnvNoNice, when set, starts every component at normal priority.
const EnvNoNice = "STAMPEDE_NO_NICE"

// Stack is a set of components and where their state lives.
type Stack struct {
	Home       string // state directory, .stampede by default
	BinDir     string // where stampede and stampede-temporal are
	Out        io.Writer
	Components []Component
}

func (s *Stack) logf(format string, args ...any) {
	if s.Out != nil {
		fmt.Fprintf(s.Out, format+"\n", args...)
	}
}

// Select returns the components named in names (all when empty), in stack order.
func (s *Stack) Select(names []string) ([]Component, error) {
	if len(names) == 0 {
		return s.Components, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []Component
	matched := map[string]bool{}
	for _, c := range s.Components {
		if want[c.Name] || want[group(c.Name)] {
			// Every member of a named family, not only the first.
			out = append(out, c)
			matched[c.Name], matched[group(c.Name)] = true, true
		}
	}
	for n := range want {
		if !matched[n] {
			return nil, fmt.Errorf("unknown component %q (known: %s)", n, strings.Join(s.Names(), ", "))
		}
	}
	return out, nil
}

// group maps "orchestrator-3" to "orchestrator" so a family can be named at once.
func group(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		return name[:i]
	}
	return name
}

// Names lists the component names.
func (s *Stack) Names() []string {
	var out []string
	for _, c := range s.Components {
		out = append(out, c.Name)
	}
	return out
}

// Up starts every selected component that is not running, in order, waiting
// for each to be ready before the next. Running components are left alone.
func (s *Stack) Up(ctx context.Context, names []string) error {
	comps, err := s.Select(names)
	if err != nil {
		return err
	}
	// Secrets for what this up may start (a run that only checks external
	// infrastructure, as compose's setup does, writes none).
	for _, c := range comps {
		if c.External == "" {
			if err := s.EnsureSecrets(); err != nil {
				return err
			}
			break
		}
	}
	for _, c := range comps {
		if err := s.up(ctx, c); err != nil {
			return err
		}
	}
	return s.ReloadPrometheus(ctx)
}

func (s *Stack) up(ctx context.Context, c Component) error {
	start := time.Now()
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	if c.External != "" {
		s.logf("%-16s external at %s: checking", c.Name, c.External)
		if err := waitReady(ctx, c, timeout, 0); err != nil {
			return fmt.Errorf("%s: external %s is not ready: %w", c.Name, c.External, err)
		}
		if c.After != nil {
			if err := c.After(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", c.Name, err)
			}
		}
		s.logf("%-16s external, ready", c.Name)
		return nil
	}
	if pid := s.readPid(c.Name); pid != 0 {
		if err := waitReady(ctx, c, timeout, pid); err != nil {
			return s.notReady(c, timeout, err)
		}
		if c.After != nil {
			if err := c.After(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", c.Name, err)
			}
		}
		s.logf("%-16s already running (pid %d)", c.Name, pid)
		return nil
	}
	for _, p := range append([]int{c.Port}, c.Ports...) {
		if p == 0 {
			continue
		}
		if err := portFree(c.Name, p); err != nil {
			return err
		}
	}
	if c.Prepare != nil {
		if err := c.Prepare(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
	}
	cmd, cred, err := c.Command(s)
	if err != nil {
		return fmt.Errorf("%s: %w", c.Name, err)
	}
	reniceGroup := false
	if c.Nice != 0 && os.Getenv(EnvNoNice) == "" {
		if cred != nil && c.Nice < 0 {
			// nice(1) would run as cred's user, who may not raise a
			// priority: the launcher sets it on the process group instead.
			reniceGroup = true
		} else if nice, err := exec.LookPath("nice"); err == nil {
			// Through nice(1), so every thread the process ever starts has it.
			cmd.Args = append([]string{"nice", "-n", strconv.Itoa(c.Nice), cmd.Path}, cmd.Args[1:]...)
			cmd.Path = nice
		}
	}
	if err := s.start(c.Name, cmd, cred); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	if reniceGroup {
		s.renice(c, pid)
	}
	s.logf("%-16s starting (pid %d, port %d, log %s)", c.Name, pid, c.Port, s.LogFile(c.Name))
	if err := waitReady(ctx, c, timeout, pid); err != nil {
		return s.notReady(c, timeout, err)
	}
	if reniceGroup {
		// Again, for what it forked before the first call (PostgreSQL's
		// background processes); later children inherit it.
		s.renice(c, pid)
	}
	if c.After != nil {
		if err := c.After(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
	}
	s.logf("%-16s ready in %s", c.Name, time.Since(start).Round(10*time.Millisecond))
	return nil
}

var errExited = errors.New("process exited")

// waitReady polls c.Ready until it succeeds, the timeout passes, or the
// process (pid, when non-zero) dies.
func waitReady(ctx context.Context, c Component, timeout time.Duration, pid int) error {
	if c.Ready == nil {
		return nil
	}
	deadline := time.Now().Add(timeout)
	var last error
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		last = c.Ready(rctx)
		cancel()
		if last == nil {
			return nil
		}
		if pid != 0 && !alive(pid) {
			return fmt.Errorf("%w before it was ready (last check: %v)", errExited, last)
		}
		if time.Now().After(deadline) {
			return last
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *Stack) notReady(c Component, timeout time.Duration, err error) error {
	what := fmt.Sprintf("did not become ready within %s", timeout)
	if errors.Is(err, errExited) {
		what = "exited during start"
	}
	return fmt.Errorf("%s %s: %v\n--- last lines of %s ---\n%s", c.Name, what, err, s.LogFile(c.Name), s.Tail(c.Name, 25))
}

// Down stops the selected components in reverse order. With wipe it also
// deletes their data directories. Down of the whole stack also deletes the
// service token and user-token key (and with wipe the data's passwords), so
// the next up rotates them.
func (s *Stack) Down(names []string, wipe bool) error {
	comps, err := s.Select(names)
	if err != nil {
		return err
	}
	var errs []error
	for i := len(comps) - 1; i >= 0; i-- {
		c := comps[i]
		if c.External != "" {
			continue
		}
		was, err := s.stop(c.Name, 20*time.Second)
		if err != nil {
			errs = append(errs, err)
		}
		if was {
			s.logf("%-16s stopped", c.Name)
		}
		if wipe {
			if err := os.RemoveAll(s.DataDir(c.Name)); err != nil {
				errs = append(errs, fmt.Errorf("wipe %s: %w", c.Name, err))
			}
		}
	}
	if wipe {
		s.logf("data wiped under %s/data", s.Home)
	}
	// A full down rotates the tokens: every process that held them is gone.
	if len(names) == 0 && len(errs) == 0 {
		if err := s.RotateOnDown(wipe); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Restart stops and starts one component, as the chaos harness does.
func (s *Stack) Restart(ctx context.Context, name string) error {
	comps, err := s.Select([]string{name})
	if err != nil {
		return err
	}
	for _, c := range comps {
		if _, err := s.stop(c.Name, 20*time.Second); err != nil {
			return err
		}
		// The process is gone, but the kernel may close its listeners a
		// moment later: wait for them rather than fail the start on a busy port.
		waitPortsFree(ctx, append([]int{c.Port}, c.Ports...), 10*time.Second)
	}
	return s.Up(ctx, []string{name})
}

// waitPortsFree waits, at most timeout, until nothing listens on ports.
func waitPortsFree(ctx context.Context, ports []int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for _, p := range ports {
		for p != 0 && portFree("", p) != nil && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// Start starts one component that is not running (e.g. after a SIGKILL).
func (s *Stack) Start(ctx context.Context, name string) error { return s.Up(ctx, []string{name}) }

// State is one line of `stampede status`.
type State struct {
	Name  string
	State string // running, stopped, external, dead
	Pid   int
	Port  int
	Ready bool
	Err   string
}

// Status checks every component once.
func (s *Stack) Status(ctx context.Context) []State {
	var out []State
	for _, c := range s.Components {
		st := State{Name: c.Name, Port: c.Port}
		switch {
		case c.External != "":
			st.State = "external"
		default:
			st.Pid = s.readPid(c.Name)
			if st.Pid != 0 {
				st.State = "running"
			} else if _, err := os.Stat(s.pidFile(c.Name)); err == nil {
				st.State = "dead"
			} else {
				st.State = "stopped"
			}
		}
		if st.State == "running" || st.State == "external" {
			if c.Ready == nil {
				st.Ready = true
			} else {
				rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				err := c.Ready(rctx)
				cancel()
				st.Ready = err == nil
				if err != nil {
					st.Err = err.Error()
				}
			}
		}
		out = append(out, st)
	}
	return out
}

// PrintStatus writes the status table.
func PrintStatus(w io.Writer, states []State) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tSTATE\tPID\tPORT\tREADY")
	for _, st := range states {
		pid := "-"
		if st.Pid != 0 {
			pid = fmt.Sprint(st.Pid)
		}
		ready := "-"
		if st.State == "running" || st.State == "external" {
			ready = "yes"
			if !st.Ready {
				ready = "no: " + firstLine(st.Err)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", st.Name, st.State, pid, st.Port, ready)
	}
	tw.Flush()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// renice sets c.Nice on the process group pid leads (start puts every
// component in its own group). Without the right to raise a priority the
// component runs at normal priority, as under nice(1), and says so.
func (s *Stack) renice(c Component, pid int) {
	if err := syscall.Setpriority(syscall.PRIO_PGRP, pid, c.Nice); err != nil {
		s.logf("%-16s runs at normal priority: setpriority %d: %v", c.Name, c.Nice, err)
	}
}
