// Command orders-stub serves the in-memory stand-in of the Orders API
// (package orderstest) on a loopback address, to measure k6's own overhead
// and to try scenarios without the platform. It is not the platform.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/stampede-dev/stampede/xk6-orders/orderstest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "orders-stub:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("orders-stub", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:18080", "loopback address to listen on")
	step := fs.Duration("step", 50*time.Millisecond, "time between two statuses of an order")
	delay := fs.Duration("accept-delay", 0, "hold every POST this long before answering")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("addr %q: %w", *addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("addr %q: only loopback addresses are allowed", *addr)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	stub := orderstest.New(*step)
	stub.AcceptDelay = *delay
	srv := &http.Server{Handler: stub.Handler(), ReadHeaderTimeout: 5 * time.Second}
	slog.Info("orders stub listening", "addr", ln.Addr().String(), "step", step.String())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	slog.Info("orders stub stopped", "orders", stub.Len())
	return nil
}
