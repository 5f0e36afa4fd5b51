// Command stampede-temporal runs an embedded single-node Temporal server
// (frontend, history, matching and worker services in one process) with the
// Temporal Web UI, on SQLite files or PostgreSQL, bound to loopback only.
//
// It is its own Go module so that the main module's tests never build the
// Temporal server. It must never listen on anything but a loopback address.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"go.temporal.io/server/common/log"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "stampede-temporal: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	o, err := parseOptions(args, os.Getenv, os.Stderr)
	if err != nil {
		return err
	}
	tuneGC()
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("component", "stampede-temporal")
	writeLockBoost.Store(int32(o.LockBoost))
	if o.LockBoost > 0 {
		// One raise now: refused, the boost is off for good (and said so).
		b := raise()
		b.restore()
		switch {
		case b.raised:
			logger.Info("write-lock holder runs above the server", "nice", max(b.old-o.LockBoost, -20), "server_nice", b.old)
		case boostRefused.Load():
			logger.Warn("write-lock holder boost unavailable (needs root or CAP_SYS_NICE): holders run at the server's priority")
		default:
			logger.Info("write-lock holder boost has nothing to raise: the server already runs at the highest priority")
		}
	}
	serverLogger := log.NewZapLogger(log.BuildZapLogger(log.Config{Level: o.LogLevel, Format: "json"}))

	if err := portsFree(o); err != nil {
		return err
	}
	st, err := newStore(o)
	if err != nil {
		return err
	}
	if err := st.prepare(serverLogger); err != nil {
		return err
	}
	if err := st.checkShards(ctx, int32(o.HistoryShards), clusterName, serverLogger); err != nil {
		return err
	}
	if err := st.ensureNamespace(o.Namespace, clusterName); err != nil {
		return err
	}

	if st.kind == persistenceSQLite && os.Getenv(EnvCheckpointer) != "0" {
		cp, err := newCheckpointer([]string{st.main.DatabaseName, st.visibility.DatabaseName}, checkpointEvery, logger)
		if err != nil {
			return err
		}
		defer cp.Close()
		cctx, stop := context.WithCancel(ctx)
		defer stop()
		go cp.Run(cctx)
	}

	conf, err := serverConfig(o, st)
	if err != nil {
		return err
	}
	gate := &readiness{}
	srv, err := newServer(o, conf, serverLogger, gate)
	if err != nil {
		return fmt.Errorf("build server: %w", err)
	}
	started := time.Now()
	if err := srv.Start(); err != nil {
		return fmt.Errorf("start server: %w", err)
	}
	defer func() {
		logger.Info("stopping server")
		if err := srv.Stop(); err != nil {
			logger.Error("stop server", "error", err)
		}
		logger.Info("stopped")
	}()

	uiErr := make(chan error, 1)
	if o.UIPort > 0 {
		ui := newUI(o)
		go func() { uiErr <- ui.Start() }()
		defer ui.Stop()
	}

	frontend := net.JoinHostPort(o.IP, strconv.Itoa(o.Port))
	setupCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err = ensureSearchAttributes(setupCtx, frontend, o.Namespace)
	cancel()
	if err != nil {
		return fmt.Errorf("namespace %q: %w", o.Namespace, err)
	}
	gate.ready.Store(true)
	logger.Info("ready",
		"frontend", frontend,
		"ui_port", o.UIPort,
		"metrics_port", o.MetricsPort,
		"persistence", o.Persistence,
		"store", st.describe(),
		"history_shards", o.HistoryShards,
		"namespace", o.Namespace,
		"startup", time.Since(started).Round(time.Millisecond).String(),
	)

	select {
	case <-ctx.Done():
		logger.Info("signal received, shutting down")
		return nil
	case err := <-uiErr:
		return fmt.Errorf("web ui stopped: %w", err)
	}
}

// tuneGC trades memory for CPU, the scarce one here: the server allocates
// heavily per request, and at GOGC=100 the collector took ~8% of its CPU under
// load (profiled at 15 sagas/s). GOGC=400 with a 2 GiB soft limit keeps the
// heap small on an idle stack and lets it grow under load. GOGC and
// GOMEMLIMIT in the environment win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(2 << 30)
	}
}
