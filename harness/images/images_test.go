package images

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEveryImageHasItsContainerfile(t *testing.T) {
	for _, im := range All {
		if im.Name == "base" {
			continue // made by debootstrap and import, not built
		}
		dir := t.TempDir()
		if err := writeAssets(im.Name, dir); err != nil {
			t.Fatalf("%s: %v", im.Name, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "Containerfile")); err != nil {
			t.Errorf("%s: %v", im.Name, err)
		}
	}
}

// Scripts must stay executable once written out of the embedded assets.
func TestWriteAssetsKeepsScriptsExecutable(t *testing.T) {
	dir := t.TempDir()
	if err := writeAssets("kafka", dir); err != nil {
		t.Fatal(err)
	}
	for name, exec := range map[string]bool{"configure": true, "launch": true, "run": true, "kafka-storage": true, "Containerfile": false, "log4j2.properties": false} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode()&0o111 != 0; got != exec {
			t.Errorf("%s: executable %v, want %v", name, got, exec)
		}
	}
}

func TestLookup(t *testing.T) {
	if im, err := Lookup("kafka"); err != nil || im.Ref != Kafka {
		t.Errorf("Lookup(kafka) = %v, %v", im, err)
	}
	if _, err := Lookup("mysql"); err == nil || !strings.Contains(err.Error(), "known: base, postgres") {
		t.Errorf("Lookup(mysql) error = %v, want one listing the images", err)
	}
}

// A failed step is named, with the end of its output and the log's path.
func TestFailedStepIsNamed(t *testing.T) {
	home := t.TempDir()
	// An engine that fails: `false` stands in for podman.
	err := Build(context.Background(), Options{Engine: "false", Root: t.TempDir(), Home: home, Only: []string{"stampede"}})
	var se *StepError
	if !errors.As(err, &se) {
		t.Fatalf("Build = %v, want a *StepError", err)
	}
	if !strings.Contains(se.Step, "check the container engine") || !strings.Contains(err.Error(), filepath.Join(home, "images", "build.log")) {
		t.Errorf("error %q: want the step named and the log's path", err)
	}
	if err := Build(context.Background(), Options{Engine: "no-such-engine", Home: home}); !errors.Is(err, ErrNoEngine) {
		t.Errorf("Build with a missing engine = %v, want ErrNoEngine", err)
	}
}
