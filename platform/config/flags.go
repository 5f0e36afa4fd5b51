package config

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// FlagSet is a flag.FlagSet whose flags may also be set from environment
// variables (flag > env > default), and whose --help lists both.
type FlagSet struct {
	*flag.FlagSet
	summary string
	envs    map[string]string // flag name -> env var
}

// NewFlagSet returns a FlagSet for the command name (e.g. "stampede serve orders"),
// with a one-paragraph summary printed by --help.
func NewFlagSet(name, summary string) *FlagSet {
	fs := &FlagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), summary: summary, envs: map[string]string{}}
	fs.Usage = func() { fs.PrintUsage(fs.Output()) }
	return fs
}

// Env binds the flag name to an environment variable.
func (fs *FlagSet) Env(name, env string) {
	if fs.Lookup(name) == nil {
		panic("config: Env for unknown flag " + name)
	}
	fs.envs[name] = env
}

// StringVar defines a string flag with an env var ("" for none).
func (fs *FlagSet) StringVar(p *string, name, env, def, usage string) {
	fs.FlagSet.StringVar(p, name, def, usage)
	if env != "" {
		fs.Env(name, env)
	}
}

// IntVar defines an int flag with an env var ("" for none).
func (fs *FlagSet) IntVar(p *int, name, env string, def int, usage string) {
	fs.FlagSet.IntVar(p, name, def, usage)
	if env != "" {
		fs.Env(name, env)
	}
}

// Float64Var defines a float flag with an env var ("" for none).
func (fs *FlagSet) Float64Var(p *float64, name, env string, def float64, usage string) {
	fs.FlagSet.Float64Var(p, name, def, usage)
	if env != "" {
		fs.Env(name, env)
	}
}

// DurationVar defines a duration flag with an env var ("" for none).
func (fs *FlagSet) DurationVar(p *time.Duration, name, env string, def time.Duration, usage string) {
	fs.FlagSet.DurationVar(p, name, def, usage)
	if env != "" {
		fs.Env(name, env)
	}
}

// BoolVar defines a bool flag with an env var ("" for none).
func (fs *FlagSet) BoolVar(p *bool, name, env string, def bool, usage string) {
	fs.FlagSet.BoolVar(p, name, def, usage)
	if env != "" {
		fs.Env(name, env)
	}
}

// Parse applies the environment first, then the command line. A bad value in
// the environment is an error naming the variable.
func (fs *FlagSet) Parse(args []string) error {
	names := make([]string, 0, len(fs.envs))
	for n := range fs.envs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		env := fs.envs[name]
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return fmt.Errorf("%s=%q: %w", env, v, err)
		}
	}
	return fs.FlagSet.Parse(args)
}

// PrintUsage writes the summary and every flag with its env var and default.
func (fs *FlagSet) PrintUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s [flags]\n\n", fs.Name())
	if fs.summary != "" {
		fmt.Fprintf(w, "%s\n\n", strings.TrimSpace(fs.summary))
	}
	fmt.Fprintln(w, "Flags (flag > environment > default):")
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if typ != "" {
			line += " " + typ
		}
		fmt.Fprintln(w, line)
		fmt.Fprintf(w, "      %s", usage)
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
			// A default URL may carry a generated password (PostgresURL, RedisURL).
			fmt.Fprintf(w, " (default %s)", RedactURL(f.DefValue))
		}
		fmt.Fprintln(w)
		if env := fs.envs[f.Name]; env != "" {
			fmt.Fprintf(w, "      env: %s\n", env)
		}
	})
}
