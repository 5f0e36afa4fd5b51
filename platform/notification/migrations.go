package notification

import (
	"embed"
	"io/fs"

	"github.com/stampede-dev/stampede/platform/postgres"
)

// Schema is the PostgreSQL schema of the Notifications service.
const Schema = "notifications"

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the SQL migrations of the notifications schema.
func Migrations() fs.FS { return postgres.Embedded(migrationFiles, "migrations") }
