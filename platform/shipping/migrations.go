package shipping

import (
	"embed"
	"io/fs"

	"github.com/stampede-dev/stampede/platform/idempotency"
	"github.com/stampede-dev/stampede/platform/postgres"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the SQL migrations of the shipping schema, the
// idempotency tables among them.
func Migrations() fs.FS {
	return postgres.Embedded(migrationFiles, "migrations", idempotency.Migration)
}
