// Package migrations embeds authsvc's SQL schema changes, applied at start-up
// by kit/pgdb.Migrate in bun/migrate naming order.
package migrations

import "embed"

// FS holds the *.up.sql files.
//
//go:embed *.sql
var FS embed.FS
