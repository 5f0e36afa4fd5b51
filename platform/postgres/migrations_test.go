package postgres

import (
	"io/fs"
	"reflect"
	"testing"
	"testing/fstest"
)

func TestEmbedded(t *testing.T) {
	files := fstest.MapFS{
		"migrations/001_first.sql": {Data: []byte("CREATE TABLE a (x int);")},
		"migrations/README":        {Data: []byte("not a migration")},
	}
	got := Embedded(files, "migrations", Migration{Name: "002_shared.sql", SQL: "CREATE TABLE IF NOT EXISTS b (y int);"})
	names, err := fs.Glob(got, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"001_first.sql", "002_shared.sql"}; !reflect.DeepEqual(names, want) {
		t.Errorf("migrations = %q, want %q", names, want)
	}
	for name, want := range map[string]string{
		"001_first.sql":  "CREATE TABLE a (x int);",
		"002_shared.sql": "CREATE TABLE IF NOT EXISTS b (y int);",
	} {
		b, err := fs.ReadFile(got, name)
		if err != nil || string(b) != want {
			t.Errorf("ReadFile(%s) = %q, %v; want %q", name, b, err, want)
		}
	}
}

func TestEmbeddedPanics(t *testing.T) {
	files := fstest.MapFS{"migrations/001_first.sql": {Data: []byte("SELECT 1;")}}
	tests := []struct {
		name  string
		extra Migration
	}{
		{"err/name taken", Migration{Name: "001_first.sql"}},
		{"err/not .sql", Migration{Name: "002_shared"}},
		{"err/in a folder", Migration{Name: "x/002_shared.sql"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Embedded with %q did not panic", tt.extra.Name)
				}
			}()
			Embedded(files, "migrations", tt.extra)
		})
	}
}
