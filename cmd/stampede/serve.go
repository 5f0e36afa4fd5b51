package main

import (
	"context"
	"fmt"
	"os"
	"strings"
)

func runServe(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" {
		fmt.Println("Usage: stampede serve NAME [flags]   (stampede serve NAME --help for its flags)\n\nProcesses:")
		printTable(os.Stdout, servers)
		if len(args) == 0 {
			return fmt.Errorf("serve needs a process name")
		}
		return nil
	}
	s, ok := lookup(servers, args[0])
	if !ok {
		return fmt.Errorf("unknown process %q (known: %s)", args[0], strings.Join(names(servers), ", "))
	}
	return s.run(ctx, args[1:])
}
