package main

import (
	"context"
	"flag"
	"log/slog"

	"github.com/fetcherhq/fetcher/internal/demo"
	"github.com/fetcherhq/fetcher/internal/secret"
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
	log := m.logger(cfg)
	keys, err := demoKeyring(cfg, keep, log)
	if err != nil {
		return &usageError{err}
	}
	return demo.Run(ctx, demo.Options{
		DatabaseURL: cfg.DatabaseURL, KeepDB: keep, Out: m.Stdout, Logger: log, Keyring: keys,
	})
}

// demoKeyring is the configured key for a database that outlives the demo
// (DATABASE_URL, --keep-db), with its warnings and production check; the
// throwaway database gets a random key of its own, so the demo stores its
// secrets encrypted like a configured fetcher.
func demoKeyring(cfg Config, keep bool, log *slog.Logger) (*secret.Keyring, error) {
	if cfg.DatabaseURL != "" || keep {
		return cfg.Secrets.Keyring(log)
	}
	text, err := secret.GenerateKey()
	if err != nil {
		return nil, err
	}
	key, err := secret.ParseKey(text)
	if err != nil {
		return nil, err
	}
	return secret.NewKeyring(key)
}
