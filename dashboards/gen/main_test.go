package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCommittedDashboardsAreGenerated fails when a dashboards/*.json file was
// edited by hand (or a definition changed without `go run ./dashboards/gen`).
func TestCommittedDashboardsAreGenerated(t *testing.T) {
	for _, d := range dashboards() {
		want, err := render(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("..", d.file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("dashboards/%s differs from its definition: run go run ./dashboards/gen", d.file)
		}
	}
}
