package notification

import (
	"embed"
	"io/fs"
)

// Schema is the PostgreSQL schema of the Notifications service.
const Schema = "notifications"

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the SQL migrations of the notifications schema.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory is fixed at build time
	}
	return sub
}
