package main

import (
	"database/sql"
	"io/fs"
	"path"
	"testing"

	"go.temporal.io/server/common/log"
	temporalschema "go.temporal.io/server/schema"
	_ "modernc.org/sqlite"
)

// TestTrimmedVisibilityIndexesExist: the indexes kept are named in the
// embedded schema (a renamed one would silently be dropped), and the rest
// are found to drop.
func TestTrimmedVisibilityIndexesExist(t *testing.T) {
	st := sqliteStore(t.TempDir(), defaultSQLiteConns)
	b, err := fs.ReadFile(temporalschema.Assets(), path.Join(st.visSchema, "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range createIndexRE.FindAllStringSubmatch(string(b), -1) {
		names[m[1]] = true
	}
	for name := range keptVisibilityIndexes {
		if !names[name] {
			t.Errorf("kept index %s is not in the embedded schema", name)
		}
	}
	if dropped := len(names) - len(keptVisibilityIndexes); dropped < 40 {
		t.Errorf("found %d indexes to drop, want the ~50 of the unused search attributes", dropped)
	}
}

// TestPrepareTrimsVisibilityIndexes prepares a fresh SQLite store twice (the
// second start finds the indexes gone) and counts what is left.
func TestPrepareTrimsVisibilityIndexes(t *testing.T) {
	st := sqliteStore(t.TempDir(), defaultSQLiteConns)
	for range 2 {
		if err := st.prepare(log.NewNoopLogger()); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("sqlite", st.visibility.DatabaseName)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'executions_visibility' AND sql IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	if len(got) != len(keptVisibilityIndexes) {
		t.Fatalf("indexes left = %v, want exactly the %d kept", got, len(keptVisibilityIndexes))
	}
	for _, n := range got {
		if !keptVisibilityIndexes[n] {
			t.Errorf("index %s left, not one of the kept", n)
		}
	}
}
