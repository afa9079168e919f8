package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/fetcherhq/fetcher/internal/secret"
)

const secretsUsage = `Usage:
  fetcher secrets genkey   print a new random key for FETCHER_SECRET_KEY
  fetcher secrets status   count the stored secrets by the key that encrypted them
  fetcher secrets rotate   encrypt every stored secret under FETCHER_SECRET_KEY:
                           values under a key in FETCHER_SECRET_KEY_OLD and plain
                           values written by SQL alike

Rotation (docs/security.md): give every worker the new key as
FETCHER_SECRET_KEY_OLD first; then swap, new key as FETCHER_SECRET_KEY and
the old one as FETCHER_SECRET_KEY_OLD; run "fetcher secrets rotate"; then
remove FETCHER_SECRET_KEY_OLD.
`

func (m *Main) secretsCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, secretsUsage)
		return &usageError{errors.New("secrets needs a command: genkey, status or rotate")}
	}
	switch args[0] {
	case "genkey":
		return m.genkey(args[1:])
	case "status":
		return m.secretsStatus(ctx, args[1:])
	case "rotate":
		return m.secretsRotate(ctx, args[1:])
	case "help", "-h", "--help":
		fmt.Fprint(m.Stdout, secretsUsage)
		return nil
	}
	fmt.Fprint(m.Stderr, secretsUsage)
	return &usageError{fmt.Errorf("unknown secrets command %q", args[0])}
}

func (m *Main) genkey(args []string) error {
	if len(args) > 0 {
		return &usageError{fmt.Errorf("secrets genkey takes no arguments, got %q", args)}
	}
	key, err := secret.GenerateKey()
	if err != nil {
		return err
	}
	fmt.Fprintln(m.Stdout, key)
	return nil
}

func (m *Main) secretsStatus(ctx context.Context, args []string) error {
	cfg, err := m.config("secrets status", args, nil)
	if err != nil {
		return err
	}
	db, err := openDatabase(ctx, cfg, m.logger(cfg))
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	use, err := db.Mailboxes().KeyUse(ctx)
	if err != nil {
		return err
	}
	keys := db.Keyring()
	if keys.Enabled() {
		fmt.Fprintf(m.Stdout, "encrypting with key %s\n", keys.PrimaryID())
	} else {
		fmt.Fprintln(m.Stdout, "no secret key configured: new secrets are stored in plain text")
	}
	ids := make([]string, 0, len(use))
	for id := range use {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		fmt.Fprintf(m.Stdout, "  %-28s %5d\n", describeKey(keys, id), use[id])
	}
	if len(ids) == 0 {
		fmt.Fprintln(m.Stdout, "  no secrets stored")
	}
	return nil
}

// describeKey says what a key id means to this worker and what to do.
func describeKey(keys *secret.Keyring, id string) string {
	switch {
	case id == "" && keys.Enabled():
		return "plain text (run rotate)"
	case id == "":
		return "plain text"
	case id == keys.PrimaryID():
		return "key " + id + " (current)"
	case keys.Has(id):
		return "key " + id + " (old: rotate)"
	}
	return "key " + id + " (NOT CONFIGURED)"
}

func (m *Main) secretsRotate(ctx context.Context, args []string) error {
	cfg, err := m.config("secrets rotate", args, nil)
	if err != nil {
		return err
	}
	log := m.logger(cfg)
	db, err := openDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	rep, err := db.Mailboxes().Reseal(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "%d values in %d mailboxes encrypted anew under key %s\n",
		rep.Sealed, rep.Mailboxes, db.Keyring().PrimaryID())
	for _, f := range rep.Failed {
		fmt.Fprintf(m.Stdout, "FAILED %v\n", f)
	}
	if len(rep.Failed) > 0 {
		return fmt.Errorf("%d mailboxes keep values that cannot be decrypted; keep FETCHER_SECRET_KEY_OLD until they are fixed", len(rep.Failed))
	}
	fmt.Fprintln(m.Stdout, "every stored secret is under the current key: FETCHER_SECRET_KEY_OLD can be removed")
	return nil
}
