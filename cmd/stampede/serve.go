package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// servers are the platform processes `stampede serve NAME` runs.
var servers = map[string]command{
	"orders":    {"Orders API on 127.0.0.1:8080 (accepts orders, projects saga status)", serveOrders},
	"relay":     {"outbox relay: publishes every service's committed outbox rows to Kafka", serveRelay},
	"toxiproxy": {"toxiproxy API on 127.0.0.1:8474 with the payments proxy on 18082", serveToxiproxy},
}

func runServe(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" {
		fmt.Println("Usage: stampede serve NAME [flags]   (stampede serve NAME --help for its flags)\n\nProcesses:")
		names := make([]string, 0, len(servers))
		for n := range servers {
			names = append(names, n)
		}
		sort.Strings(names)
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		for _, n := range names {
			fmt.Fprintf(tw, "  %s\t%s\n", n, servers[n].summary)
		}
		tw.Flush()
		if len(args) == 0 {
			return fmt.Errorf("serve needs a process name")
		}
		return nil
	}
	s, ok := servers[args[0]]
	if !ok {
		names := make([]string, 0, len(servers))
		for n := range servers {
			names = append(names, n)
		}
		sort.Strings(names)
		return fmt.Errorf("unknown process %q (known: %s)", args[0], strings.Join(names, ", "))
	}
	return s.run(ctx, args[1:])
}
