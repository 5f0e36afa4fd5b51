package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/stampede-dev/stampede/harness/images"
	"github.com/stampede-dev/stampede/platform/config"
)

func runImages(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede images build | list", `Container images of the platform, for stampedetest (testcontainers) and compose/,
built with the local engine (Podman, or Docker) and no image registry:
  build   Stampede's binaries FROM scratch (static, CGO_ENABLED=0); PostgreSQL, Redis and
          Kafka (Maven Central jars + Debian's JRE) on a Debian base filesystem made here
          with debootstrap (as root, once: later builds reuse the base image).
  list    every image, whether it is built, and its size.
A failed step is printed by name with the end of its output; the whole output is in
<home>/images/build.log.

Images: `+strings.Join(images.Names(), ", ")+`.`)
	var (
		engine, home, root, mirror, only string
		rebuild, verbose                 bool
	)
	fs.StringVar(&engine, "engine", "STAMPEDE_CONTAINER_ENGINE", "", "podman or docker (default: podman if on PATH, else docker)")
	fs.StringVar(&home, "home", "STAMPEDE_HOME", ".stampede", "state directory: Kafka jar cache, build contexts in images/")
	fs.StringVar(&root, "root", "STAMPEDE_ROOT", "", "repository root (default: the directory above holding the main go.mod)")
	fs.StringVar(&mirror, "mirror", "STAMPEDE_DEBIAN_MIRROR", images.DefaultMirror, "Debian mirror for debootstrap")
	fs.StringVar(&only, "only", "", "", "comma-separated images to build (default: all)")
	fs.BoolVar(&rebuild, "rebuild", "", false, "remake the Debian base filesystem even when its image exists")
	fs.BoolVar(&verbose, "v", "", false, "stream every command's output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Flags may come before or after the subcommand.
	var rest []string
	for fs.NArg() > 0 {
		rest = append(rest, fs.Arg(0))
		if err := fs.FlagSet.Parse(fs.Args()[1:]); err != nil {
			return err
		}
	}
	if len(rest) != 1 {
		fs.Usage()
		return fmt.Errorf("images needs one subcommand: build or list")
	}
	switch rest[0] {
	case "build":
		if root == "" {
			r, err := repoRoot()
			if err != nil {
				return err
			}
			root = r
		}
		absHome, err := filepath.Abs(home)
		if err != nil {
			return err
		}
		err = images.Build(ctx, images.Options{
			Engine: engine, Root: root, Home: absHome, Mirror: mirror,
			Only: splitComma(only), Rebuild: rebuild, Verbose: verbose, Out: os.Stdout,
		})
		if err != nil {
			return err
		}
		return listImages(ctx, engine)
	case "list":
		return listImages(ctx, engine)
	}
	return fmt.Errorf("images %s: unknown subcommand (build or list)", rest[0])
}

func listImages(ctx context.Context, engine string) error {
	sizes, err := images.Sizes(ctx, engine)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tREF\tSIZE\tWHAT")
	for _, s := range sizes {
		size := "not built"
		if s.Bytes > 0 {
			size = fmt.Sprintf("%.0f MB", float64(s.Bytes)/1e6)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Image.Name, s.Image.Ref, size, s.Image.Summary)
	}
	return tw.Flush()
}

// repoRoot is the nearest directory at or above the working directory whose
// go.mod is the main module's.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			bytes.HasPrefix(b, []byte("module github.com/stampede-dev/stampede\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("not inside the Stampede repository (no go.mod of github.com/stampede-dev/stampede above the working directory): run from the repository or pass --root")
		}
		dir = parent
	}
}
