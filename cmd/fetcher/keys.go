package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"

	"github.com/fetcherhq/fetcher/internal/secret"
)

// SecretSettings say where the key that encrypts the stored secrets comes
// from. They are read from the environment only, never from flags: a flag
// would show the key to every user of the machine in the process list.
type SecretSettings struct {
	// Key is FETCHER_SECRET_KEY: 32 bytes as base64 or hex.
	Key string
	// KeyFile is FETCHER_SECRET_KEY_FILE: a file holding the key (a
	// Kubernetes or Docker secret mounted as a file).
	KeyFile string
	// OldKeys is FETCHER_SECRET_KEY_OLD: keys that still decrypt during a
	// rotation, separated by commas or white space.
	OldKeys string
	// OldKeyFile is FETCHER_SECRET_KEY_OLD_FILE: a file of such keys, one
	// per line.
	OldKeyFile string
	// Production is FETCHER_ENV=production: refuse to start without a key.
	Production bool
}

func (s *SecretSettings) fromEnv(getenv func(string) string) error {
	s.Key = getenv("FETCHER_SECRET_KEY")
	s.KeyFile = getenv("FETCHER_SECRET_KEY_FILE")
	s.OldKeys = getenv("FETCHER_SECRET_KEY_OLD")
	s.OldKeyFile = getenv("FETCHER_SECRET_KEY_OLD_FILE")
	switch env := strings.ToLower(strings.TrimSpace(getenv("FETCHER_ENV"))); env {
	case "", "development", "test":
	case "production", "prod":
		s.Production = true
	default:
		return fmt.Errorf("FETCHER_ENV=%q: use production (refuses to start without a secret key), development or test", env)
	}
	return nil
}

// errNoKeyInProduction stops a production worker that would store
// credentials in plain text.
var errNoKeyInProduction = errors.New("FETCHER_ENV is production but no secret key is configured, so passwords, client secrets and tokens would be stored in plain text. " +
	"Do this: generate a key with `fetcher secrets genkey`, keep it in your secret store, and give it to every fetcher as FETCHER_SECRET_KEY or FETCHER_SECRET_KEY_FILE (docs/security.md)")

// Keyring builds the keyring, or returns nil when no key is configured.
// The log is told loudly about running without one, and about a key file
// other users can read.
func (s SecretSettings) Keyring(log *slog.Logger) (*secret.Keyring, error) {
	primary, err := s.primary(log)
	if err != nil {
		return nil, err
	}
	if primary == nil {
		if s.Production {
			return nil, errNoKeyInProduction
		}
		if s.OldKeys != "" || s.OldKeyFile != "" {
			return nil, errors.New("FETCHER_SECRET_KEY_OLD is set without FETCHER_SECRET_KEY: set the new key too (docs/security.md, key rotation)")
		}
		log.Warn("NO SECRET KEY CONFIGURED: mailbox passwords, client secrets and tokens are stored in PLAIN TEXT in the database. " +
			"Generate a key with `fetcher secrets genkey` and set FETCHER_SECRET_KEY or FETCHER_SECRET_KEY_FILE; " +
			"set FETCHER_ENV=production to refuse to start without one (docs/security.md)")
		return nil, nil
	}
	old, err := s.old(log)
	if err != nil {
		return nil, err
	}
	return secret.NewKeyring(primary, old...)
}

func (s SecretSettings) primary(log *slog.Logger) ([]byte, error) {
	switch {
	case s.Key != "" && s.KeyFile != "":
		return nil, errors.New("set FETCHER_SECRET_KEY or FETCHER_SECRET_KEY_FILE, not both")
	case s.Key != "":
		k, err := secret.ParseKey(s.Key)
		if err != nil {
			return nil, fmt.Errorf("FETCHER_SECRET_KEY: %w", err)
		}
		return k, nil
	case s.KeyFile != "":
		text, err := readKeyFile(s.KeyFile, "FETCHER_SECRET_KEY_FILE", log)
		if err != nil {
			return nil, err
		}
		k, err := secret.ParseKey(text)
		if err != nil {
			return nil, fmt.Errorf("FETCHER_SECRET_KEY_FILE %s: %w", s.KeyFile, err)
		}
		return k, nil
	}
	return nil, nil
}

func (s SecretSettings) old(log *slog.Logger) ([][]byte, error) {
	texts := strings.FieldsFunc(s.OldKeys, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
	if s.OldKeyFile != "" {
		text, err := readKeyFile(s.OldKeyFile, "FETCHER_SECRET_KEY_OLD_FILE", log)
		if err != nil {
			return nil, err
		}
		texts = append(texts, strings.Fields(text)...)
	}
	var keys [][]byte
	for i, t := range texts {
		k, err := secret.ParseKey(t)
		if err != nil {
			return nil, fmt.Errorf("old secret key %d (FETCHER_SECRET_KEY_OLD / _FILE): %w", i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// readKeyFile reads a key file and warns when users other than its owner
// may read it.
func readKeyFile(path, setting string, log *slog.Logger) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", setting, err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("the secret key file can be read by other users of this machine: chmod 600 it",
			"file", path, "mode", fi.Mode().Perm().String(), "setting", setting)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", setting, err)
	}
	return string(b), nil
}
