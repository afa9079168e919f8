package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/fetcherhq/fetcher/internal/store"
)

func (m *Main) migrateCmd(ctx context.Context, args []string) error {
	var down bool
	cfg, err := m.config("migrate", args, func(fs *flag.FlagSet, _ *Config) {
		fs.BoolVar(&down, "down", false, "revert the newest applied migration instead")
	})
	if err != nil {
		return err
	}
	db, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	if down {
		v, err := db.MigrateDown(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "reverted: %s\n", orNone(v))
		return nil
	}
	applied, err := db.Migrate(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "%s database %s: %d migrations applied %v; schema is up to date\n",
		db.Dialect(), displayURL(cfg.DatabaseURL), len(applied), applied)
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "nothing (no migration applied)"
	}
	return s
}
