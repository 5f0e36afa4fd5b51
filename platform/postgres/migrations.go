package postgres

import (
	"fmt"
	"io/fs"
	"path"
	"testing/fstest"
)

// Migration is one migration by file name, for SQL that a package shared by
// several services owns (the idempotency tables) rather than the service.
type Migration struct {
	Name string // NNN_name.sql: its place in the order and its record in schema_migrations
	SQL  string
}

// Embedded returns the *.sql files in dir of files (a service's
// //go:embed), plus extra, as the set Migrate applies. The set is fixed at
// build time, so a name used twice, a name Migrate would not read or an
// unreadable file panics; any test
// that migrates the service shows it.
//
// The files are copied into the standard library's in-memory file system:
// they are a few kilobytes, read once at start.
func Embedded(files fs.FS, dir string, extra ...Migration) fs.FS {
	names, err := fs.Glob(files, path.Join(dir, "*.sql"))
	if err != nil {
		panic(fmt.Sprintf("postgres: list migrations in %s: %v", dir, err))
	}
	set := fstest.MapFS{}
	for _, name := range names {
		b, err := fs.ReadFile(files, name)
		if err != nil {
			panic(fmt.Sprintf("postgres: read migration %s: %v", name, err))
		}
		set[path.Base(name)] = &fstest.MapFile{Data: b, Mode: 0o444}
	}
	for _, m := range extra {
		if path.Base(m.Name) != m.Name || path.Ext(m.Name) != ".sql" {
			panic(fmt.Sprintf("postgres: migration name %q is not a file name ending in .sql", m.Name))
		}
		if _, dup := set[m.Name]; dup {
			panic(fmt.Sprintf("postgres: migration %s declared twice", m.Name))
		}
		set[m.Name] = &fstest.MapFile{Data: []byte(m.SQL), Mode: 0o444}
	}
	return set
}
