// Package migrations holds the schema as plain SQL files, one folder per
// database dialect, embedded in the binary. Files are applied in lexical
// order (NNN_verb_noun.up.sql) and recorded in schema_migrations; see
// internal/store/migrate.go.
package migrations

import "embed"

// FS holds postgres/*.sql and sqlite/*.sql. go:embed cannot reach a parent
// directory, so the store package reads the files through this variable.
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS
