package main

import (
	"context"
	"flag"

	"github.com/fetcherhq/fetcher/internal/demo"
)

func (m *Main) demoCmd(ctx context.Context, args []string) error {
	var keep bool
	cfg, err := m.config("demo", args, func(fs *flag.FlagSet, c *Config) {
		if m.Getenv("FETCHER_LOG_LEVEL") == "" {
			c.LogLevel = "warn" // the demo narrates; per-mailbox log lines would repeat it
		}
		fs.BoolVar(&keep, "keep-db", false, "keep the throwaway SQLite database and print where it is")
	})
	if err != nil {
		return err
	}
	return demo.Run(ctx, demo.Options{
		DatabaseURL: cfg.DatabaseURL, KeepDB: keep, Out: m.Stdout, Logger: m.logger(cfg),
	})
}
