package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/stampede-dev/stampede/harness/stack"
	"github.com/stampede-dev/stampede/platform/config"
)

// stackFlags are the flags every stack command shares.
type stackFlags struct {
	home          string
	bin           string
	orchestrators int
	workers       int
	replication   int
	kafkaHeap     string
	kafkaJVMOpts  string
}

func (f *stackFlags) register(fs *config.FlagSet) {
	fs.StringVar(&f.home, "home", "STAMPEDE_HOME", ".stampede", "state directory: logs/, data/, run/ (pid files), cache/")
	fs.StringVar(&f.bin, "bin", "STAMPEDE_BIN", defaultBinDir(), "directory holding stampede-temporal")
	fs.IntVar(&f.orchestrators, "orchestrators", "STAMPEDE_ORCHESTRATORS", 5, "members of the order-orchestrator consumer group")
	fs.IntVar(&f.workers, "workers", "STAMPEDE_WORKERS", 2, "saga workers")
	fs.IntVar(&f.replication, "replication", "STAMPEDE_KAFKA_REPLICATION", 1, "replication factor of the topics up creates")
	fs.StringVar(&f.kafkaHeap, "kafka-heap", "STAMPEDE_KAFKA_HEAP", "1g", "maximum Java heap of the Kafka broker")
	fs.StringVar(&f.kafkaJVMOpts, "kafka-jvm-opts", "STAMPEDE_KAFKA_JVM_OPTS", stack.DefaultKafkaJVMOpts,
		"the Kafka broker's JVM options beside the heap, space-separated (replaces the default GC and JIT choice)")
}

func (f *stackFlags) stack(out io.Writer) (*stack.Stack, error) {
	if err := config.Validate(); err != nil {
		return nil, err
	}
	if f.replication < 1 || f.replication > 32767 {
		return nil, fmt.Errorf("--replication %d: want at least 1", f.replication)
	}
	if f.orchestrators < 0 || f.workers < 0 {
		return nil, fmt.Errorf("--orchestrators and --workers must not be negative")
	}
	home, err := filepath.Abs(f.home)
	if err != nil {
		return nil, err
	}
	bin, err := filepath.Abs(f.bin)
	if err != nil {
		return nil, err
	}
	// This process (URLs carrying the generated passwords) and every process
	// it starts read the secrets under the same home, whatever the working
	// directory.
	os.Setenv(config.EnvHome, home)
	return stack.New(stack.Options{
		Home: home, BinDir: bin, Out: out,
		Replication: int16(f.replication), KafkaHeap: f.kafkaHeap, KafkaJVMOpts: strings.Fields(f.kafkaJVMOpts),
		Orchestrators: f.orchestrators, Workers: f.workers,
	}), nil
}

// parseStack registers the stack flags on fs beside the command's own, parses
// args and returns the stack they describe.
func parseStack(fs *config.FlagSet, args []string) (*stack.Stack, error) {
	var f stackFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return f.stack(os.Stdout)
}

// defaultBinDir is the directory of this executable (bin/ after make build).
func defaultBinDir() string {
	if exe, err := os.Executable(); err == nil {
		return filepath.Dir(exe)
	}
	return "bin"
}

const stackEnvHelp = `
Components: postgres, redis, kafka, temporal, toxiproxy, relay, orders (and the
other services as they are built). Name some to act on those only; a family such
as "orchestrator" names all its members.

Ports: STAMPEDE_<NAME>_PORT, e.g. STAMPEDE_KAFKA_PORT=19092.
External infrastructure (checked, never started): STAMPEDE_KAFKA_BROKERS,
STAMPEDE_TEMPORAL_ADDRESS, STAMPEDE_POSTGRES_URL, STAMPEDE_REDIS_URL.`

func runUp(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede up [COMPONENT...]", `Start the stack on 127.0.0.1, each component as a real process with its log in
.stampede/logs/NAME.log and its data in .stampede/data/NAME. Installs what is missing
(Debian packages with apt-get when root, the Kafka broker jars from Maven Central) and
waits for each component to be ready. Running components are left alone, so up twice
is a no-op.`+stackEnvHelp)
	s, err := parseStack(fs, args)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := s.Up(ctx, fs.Args()); err != nil {
		return err
	}
	fmt.Printf("stack up in %s; `stampede status` shows it, `stampede down` stops it\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}

func runDown(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede down [COMPONENT...]", `Stop what up started, in reverse order (SIGTERM, then SIGKILL after 20 s), using
the pid files in .stampede/run. Never touches a process up did not start. Data is
kept unless --wipe.`+stackEnvHelp)
	var wipe bool
	fs.BoolVar(&wipe, "wipe", "", false, "also delete the components' data directories")
	s, err := parseStack(fs, args)
	if err != nil {
		return err
	}
	return s.Down(fs.Args(), wipe)
}

func runStatus(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede status", `Show every component: whether it runs, its pid and port, and whether its readiness
check passes. Exits 0 only when every component runs (or is external) and is ready.`+stackEnvHelp)
	s, err := parseStack(fs, args)
	if err != nil {
		return err
	}
	states := s.Status(ctx)
	stack.PrintStatus(os.Stdout, states)
	for _, st := range states {
		if (st.State == "running" || st.State == "external") && !st.Ready {
			return fmt.Errorf("%s is not ready", st.Name)
		}
		if st.State == "dead" {
			return fmt.Errorf("%s died (its pid file remains; see `stampede logs %s`)", st.Name, st.Name)
		}
	}
	for _, st := range states {
		if st.State == "stopped" {
			return fmt.Errorf("the stack is not fully up (%s is stopped): `stampede up` starts it", st.Name)
		}
	}
	return nil
}

func runLogs(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede logs NAME", `Print the last lines of a component's log (.stampede/logs/NAME.log), or follow it.`)
	var f stackFlags
	f.register(fs)
	var n int
	var follow bool
	fs.IntVar(&n, "n", "", 50, "lines to print")
	fs.BoolVar(&follow, "f", "", false, "follow the log until interrupted")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("logs needs one component name, e.g. `stampede logs kafka`")
	}
	s, err := f.stack(os.Stdout)
	if err != nil {
		return err
	}
	name := fs.Arg(0)
	path := s.LogFile(name)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no log for %q at %s (components: %s)", name, path, strings.Join(s.Names(), ", "))
	}
	fmt.Println(s.Tail(name, n))
	if !follow {
		return nil
	}
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	file.Seek(0, io.SeekEnd)
	r := bufio.NewReader(file)
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			fmt.Print(line)
		}
		if err == io.EOF {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return err
		}
	}
}

func runKill(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede kill NAME", `Send a signal to one running component of the stack (SIGKILL by default), the way
the chaos harness kills Payments mid-flight. The pid file stays, so status shows it
dead until `+"`stampede restart NAME`"+` or `+"`stampede up`"+` starts it again.`+stackEnvHelp)
	var f stackFlags
	f.register(fs)
	var sig string
	fs.StringVar(&sig, "signal", "", "KILL", "signal name: KILL, TERM, INT, STOP, CONT")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("kill needs exactly one component name")
	}
	signals := map[string]syscall.Signal{"KILL": syscall.SIGKILL, "TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "STOP": syscall.SIGSTOP, "CONT": syscall.SIGCONT}
	s2, ok := signals[strings.TrimPrefix(strings.ToUpper(sig), "SIG")]
	if !ok {
		return fmt.Errorf("--signal %q: want one of KILL, TERM, INT, STOP, CONT", sig)
	}
	s, err := f.stack(os.Stdout)
	if err != nil {
		return err
	}
	if _, err := s.Select(fs.Args()); err != nil {
		return err
	}
	pid, err := s.Kill(fs.Arg(0), s2)
	if err != nil {
		return err
	}
	fmt.Printf("%s: sent %s to pid %d\n", fs.Arg(0), s2, pid)
	return nil
}

func runRestart(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede restart NAME...", `Stop (SIGTERM, then SIGKILL after 20 s) and start again each named component,
waiting until it is ready. A component that is dead (e.g. after stampede kill) is just
started. The process inherits this command's environment, so e.g.
STAMPEDE_PAYMENTS_CHARGE_LATENCY=300ms stampede restart payments changes its settings.`+stackEnvHelp)
	var f stackFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("restart needs at least one component name")
	}
	s, err := f.stack(os.Stdout)
	if err != nil {
		return err
	}
	comps, err := s.Select(fs.Args())
	if err != nil {
		return err
	}
	for _, c := range comps {
		if err := s.Restart(ctx, c.Name); err != nil {
			return err
		}
	}
	return nil
}
