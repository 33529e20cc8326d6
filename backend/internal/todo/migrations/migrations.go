// Package migrations embeds the todo schema, applied at start-up by
// pgdb.Migrate under an advisory lock.
package migrations

import "embed"

// FS holds the bun/migrate SQL files.
//
//go:embed *.sql
var FS embed.FS
