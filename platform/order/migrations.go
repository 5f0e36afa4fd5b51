package order

import (
	"embed"
	"io/fs"

	"github.com/stampede-dev/stampede/platform/postgres"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the SQL migrations of the orders schema. Orders keeps
// its own idempotency table: a key there is held while the order is
// written (409 in flight), not answered under a lock like the services'.
func Migrations() fs.FS { return postgres.Embedded(migrationFiles, "migrations") }
