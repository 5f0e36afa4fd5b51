package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stampede-dev/stampede/harness/stack"
)

func TestTables(t *testing.T) {
	for _, tc := range []struct {
		name  string
		table []command
	}{
		{"commands", commands},
		{"servers", servers},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[string]bool{}
			for _, c := range tc.table {
				if c.name == "" || strings.ContainsAny(c.name, " \t") {
					t.Errorf("name %q: want one word", c.name)
				}
				if seen[c.name] {
					t.Errorf("%s: listed twice", c.name)
				}
				seen[c.name] = true
				if c.summary == "" || strings.Contains(c.summary, "\n") {
					t.Errorf("%s: summary %q, want one line of help", c.name, c.summary)
				}
				if c.run == nil {
					t.Errorf("%s: no run func", c.name)
				}
			}
			// Help lists the table in its order: keep it sorted so the list is
			// easy to scan and the help reads as it always has.
			if got := names(tc.table); !slices.IsSorted(got) {
				t.Errorf("names %v: want them sorted", got)
			}
		})
	}
}

// TestServeCoversStack checks that every process the stack starts as
// `stampede serve NAME` is in the serve table, and that the table holds no
// process the stack never starts.
func TestServeCoversStack(t *testing.T) {
	s := stack.New(stack.Options{Home: t.TempDir(), BinDir: t.TempDir(), Workers: 2, Orchestrators: 2})
	started := map[string]bool{}
	for _, c := range s.Components {
		cmd, _, err := c.Command(s)
		if err != nil || len(cmd.Args) < 3 || cmd.Args[1] != "serve" {
			continue // infrastructure: not a stampede serve process
		}
		name := cmd.Args[2]
		started[name] = true
		if _, ok := lookup(servers, name); !ok {
			t.Errorf("stack component %s runs `stampede serve %s`, which the serve table lacks", c.Name, name)
		}
	}
	if len(started) == 0 {
		t.Fatal("the stack starts no `stampede serve` process: the check above checked nothing")
	}
	for _, n := range names(servers) {
		if !started[n] {
			t.Errorf("serve %s: the stack never starts it (started: %v)", n, started)
		}
	}
}

func TestHelpListsEveryCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, &out); err != nil {
		t.Fatalf("run --help: %v", err)
	}
	for _, c := range commands {
		if !strings.Contains(out.String(), "  "+c.name+" ") || !strings.Contains(out.String(), c.summary) {
			t.Errorf("help lacks %s (%s):\n%s", c.name, c.summary, out.String())
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	quiet(t)
	err := run(context.Background(), []string{"nosuch"}, new(bytes.Buffer))
	if err == nil || !strings.Contains(err.Error(), `unknown command "nosuch"`) {
		t.Errorf("got %v, want unknown command", err)
	}
	err = runServe(context.Background(), []string{"nosuch"})
	if err == nil || !strings.Contains(err.Error(), `unknown process "nosuch"`) {
		t.Errorf("serve: got %v, want unknown process", err)
	}
}

// TestEveryEntryHasHelp runs `COMMAND --help` and `serve NAME --help` for
// every entry: each must print its help and stop before doing anything.
func TestEveryEntryHasHelp(t *testing.T) {
	quiet(t)
	for _, tc := range []struct {
		kind  string
		table []command
	}{
		{"command", commands},
		{"serve", servers},
	} {
		for _, c := range tc.table {
			err := c.run(context.Background(), []string{"--help"})
			if err != nil && !errors.Is(err, flag.ErrHelp) {
				t.Errorf("%s %s --help: %v, want its help", tc.kind, c.name, err)
			}
		}
	}
}

// quiet sends the test's stdout and stderr to /dev/null, as help goes there.
func quiet(t *testing.T) {
	t.Helper()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = null, null
	t.Cleanup(func() { os.Stdout, os.Stderr = stdout, stderr; null.Close() })
}
