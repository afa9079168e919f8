package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fetcherhq/fetcher/internal/provision"
	"github.com/fetcherhq/fetcher/internal/store"
)

const seedUsage = `Usage: fetcher seed [flags] FILE

Creates or updates the mailboxes and ticket types a YAML seed file declares,
by name, in one transaction: all of them or, on any error, none. Settings
the file does not name are left as they are; the fetcher's state (tokens,
status, errors) is never touched. Every mailbox is checked as a pass would
check it before anything is written, and an error names the file, the line
and the setting. Running the same file again changes nothing.

Secrets do not belong in a reviewed file: write ${NAME} to take a value from
the environment variable NAME, or KEY_file: PATH to read it from a file
(docs/provisioning.md has the format and an example).

Flags:
`

func (m *Main) seedCmd(ctx context.Context, args []string) error {
	var dryRun bool
	register := m.provisionFlags(seedUsage, func(fs *flag.FlagSet) {
		fs.BoolVar(&dryRun, "dry-run", false, "print what would change and write nothing")
	})
	flagArgs, operands := splitOperands(args, register)
	cfg, err := m.config("seed", flagArgs, register)
	switch {
	case err != nil:
		return err
	case len(operands) != 1:
		return &usageError{fmt.Errorf("seed takes one file, got %d: fetcher seed [--dry-run] FILE", len(operands))}
	}
	f, err := provision.ParseFile(operands[0], m.Getenv)
	if err != nil {
		return &usageError{err}
	}
	return m.provision(ctx, cfg, dryRun, func(p *provision.Planner) (*provision.Plan, error) {
		return p.PlanFile(ctx, f)
	})
}

// provisionFlags registers a provisioning command's flags and usage.
func (m *Main) provisionFlags(usage string, more func(*flag.FlagSet)) func(*flag.FlagSet, *Config) {
	return func(fs *flag.FlagSet, c *Config) {
		quietLogs(m, fs, c)
		more(fs)
		fs.Usage = func() {
			fmt.Fprint(fs.Output(), usage)
			fs.PrintDefaults()
		}
	}
}

// provision opens the database (migrating it like fetcher run), plans,
// prints the plan and, unless dryRun, applies it.
func (m *Main) provision(ctx context.Context, cfg Config, dryRun bool,
	plan func(*provision.Planner) (*provision.Plan, error)) error {
	if dryRun {
		cfg.AutoMigrate = false // a dry run writes nothing, the schema included
	}
	db, err := openDatabase(ctx, cfg, m.logger(cfg))
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	p, err := plan(&provision.Planner{DB: db, Now: m.now})
	if err != nil {
		return &usageError{err}
	}
	if !dryRun {
		if err := p.Apply(ctx, db); err != nil {
			return err
		}
	}
	printPlan(m.Stdout, p, dryRun)
	return nil
}

// printPlan says what was (or, in a dry run, would be) written: names and
// columns only, never a value, as a value may be a secret.
func printPlan(w io.Writer, p *provision.Plan, dryRun bool) {
	verb := map[bool][2]string{false: {"created", "updated"}, true: {"would create", "would update"}}[dryRun]
	var created, updated, same int
	line := func(what, name string, create bool, cols []string) {
		switch {
		case create:
			created++
			fmt.Fprintf(w, "%s %s %q: %s\n", verb[0], what, name, strings.Join(cols, ", "))
		case len(cols) > 0:
			updated++
			fmt.Fprintf(w, "%s %s %q: %s\n", verb[1], what, name, strings.Join(cols, ", "))
		default:
			same++
			fmt.Fprintf(w, "unchanged %s %q\n", what, name)
		}
	}
	for _, mb := range p.Mailboxes {
		line("mailbox", mb.Mailbox.Name, mb.Create, mb.Columns)
		if mb.DropTokens {
			fmt.Fprintf(w, "  its cached access tokens are dropped: the next pass asks the provider for new ones\n")
		}
		if mb.ForgetCursors {
			fmt.Fprintf(w, "  its IMAP cursor is reset: the next pass reads the folder from the start\n")
		}
	}
	for _, tt := range p.TicketTypes {
		line("ticket type", tt.TicketType.Name, tt.Create, tt.Columns)
	}
	summary := fmt.Sprintf("%d created, %d updated, %d unchanged", created, updated, same)
	if dryRun {
		summary = "dry run, nothing written: " + strings.NewReplacer("created", "to create", "updated", "to update").Replace(summary)
	}
	fmt.Fprintln(w, summary)
	for _, step := range p.Next {
		fmt.Fprintln(w, "next: "+step)
	}
}

const mailboxAddUsage = `Usage: fetcher mailbox add [flags] NAME

Adds a mailbox. Each flag sets the mailboxes column of the same name (with _
for -); the ones left out take their defaults (port from the protocol and
TLS, folder INBOX, after_fetch mark_seen, enabled). The row is checked as a
pass would check it before it is written. Secrets are never flags, which
would leave them in the shell's history and the process list: give
--client-secret-file PATH (- reads standard input) or --client-secret-env
NAME, and the same for password, client_private_key and refresh_token.

Example (Microsoft 365, delegated; then run fetcher authorize helpdesk):
  fetcher mailbox add --protocol imap --host outlook.office365.com \
    --username helpdesk@contoso.com --oauth-provider microsoft \
    --tenant-id contoso.onmicrosoft.com --client-id 00000000-0000-0000-0000-000000000000 \
    --client-secret-env HELPDESK_CLIENT_SECRET helpdesk

Flags:
`

const mailboxSetUsage = `Usage: fetcher mailbox set [flags] NAME|ID

Changes the columns named by the flags, and nothing else; --name renames
the mailbox. A flag given an empty value ("") sets the column back to its
default. A change of server, account, provider or client drops the cached
access tokens. The row is checked as a pass would check it first.

Flags:
`

func (m *Main) mailboxAdd(ctx context.Context, args []string) error {
	return m.mailboxEdit(ctx, "mailbox add", mailboxAddUsage, args, true)
}

func (m *Main) mailboxSet(ctx context.Context, args []string) error {
	return m.mailboxEdit(ctx, "mailbox set", mailboxSetUsage, args, false)
}

func (m *Main) mailboxEdit(ctx context.Context, name, usage string, args []string, create bool) error {
	var dryRun bool
	fields := &fieldFlags{getenv: m.Getenv, stdin: m.Stdin, create: create}
	register := m.provisionFlags(usage, func(fs *flag.FlagSet) {
		fs.BoolVar(&dryRun, "dry-run", false, "print what would change and write nothing")
		fields.register(fs)
	})
	cfg, ref, err := m.oneMailbox(name, args, register)
	if err != nil {
		return err
	}
	entry := provision.Entry{Name: ref, Settings: fields.settings}
	if create {
		entry.Settings = append([]provision.Setting{{Key: "name", Text: ref}}, entry.Settings...)
	} else if len(entry.Settings) == 0 {
		return &usageError{fmt.Errorf("%s changes nothing without flags: fetcher %s --help lists them", name, name)}
	}
	return m.provision(ctx, cfg, dryRun, func(p *provision.Planner) (*provision.Plan, error) {
		mbName, err := m.mailboxName(ctx, p.DB, ref, create)
		if err != nil {
			return nil, err
		}
		if v, ok := entry.Value("name"); ok {
			entry.Name = v
		} else {
			entry.Name = mbName
		}
		return p.PlanMailbox(ctx, mbName, entry, create)
	})
}

// mailboxName resolves set's NAME|ID to the mailbox's name; add's NAME is
// the new name.
func (m *Main) mailboxName(ctx context.Context, db *store.DB, ref string, create bool) (string, error) {
	if create {
		return ref, nil
	}
	mb, err := lookupMailbox(ctx, db, ref)
	return mb.Name, err
}

// fieldFlags registers a flag per mailbox setting and collects the ones
// given, in order.
type fieldFlags struct {
	getenv   func(string) string
	stdin    io.Reader
	create   bool
	settings []provision.Setting
	// stdinText is standard input once read, by the flag stdinFlag: the
	// flags are parsed twice (see splitOperands), and only one flag may
	// read it.
	stdinText *string
	stdinFlag string
}

// register defines the flags on fs; the settings collected are those of
// the last flag set parsed.
func (ff *fieldFlags) register(fs *flag.FlagSet) {
	ff.settings, ff.stdinFlag = nil, ""
	for _, f := range provision.Fields {
		switch {
		case f.Key == "name" && ff.create:
			// add takes the name as its operand.
		case f.Kind == provision.Secret:
			ff.add(fs, f.Flag()+"-file", f.Key, "read "+f.Help+" from `FILE` (- for standard input; column "+f.Key+")", ff.fromFile, false)
			ff.add(fs, f.Flag()+"-env", f.Key, "take "+f.Help+" from the environment variable `NAME`", ff.fromEnv, false)
		case f.Kind == provision.PEM:
			ff.add(fs, f.Flag()+"-file", f.Key, "read "+f.Help+" from `FILE` (- for standard input; column "+f.Key+")", ff.fromFile, false)
		case f.Kind == provision.Bool:
			ff.add(fs, f.Flag(), f.Key, f.Help+" (column "+f.Key+"; =false to clear)", as, true)
		default:
			ff.add(fs, f.Flag(), f.Key, f.Help+" (column `"+f.Key+"`)", as, false)
		}
	}
}

// as takes a flag's text as it is.
func as(s string) (string, error) { return s, nil }

func (ff *fieldFlags) add(fs *flag.FlagSet, flagName, key, help string, read func(string) (string, error), isBool bool) {
	fs.Var(&fieldValue{isBool: isBool, set: func(s string) error {
		if s == "-" && strings.HasSuffix(flagName, "-file") {
			if ff.stdinFlag != "" && ff.stdinFlag != flagName {
				return fmt.Errorf("--%s and --%s both read standard input: give one of them a file", ff.stdinFlag, flagName)
			}
			ff.stdinFlag = flagName
		}
		text, err := read(s)
		if err != nil {
			return fmt.Errorf("--%s: %w", flagName, err)
		}
		ff.settings = append(ff.settings, provision.Setting{Key: key, Text: text})
		return nil
	}}, flagName, help)
}

func (ff *fieldFlags) fromFile(path string) (string, error) {
	var data []byte
	var err error
	switch {
	case path == "-" && ff.stdinText != nil:
		return *ff.stdinText, nil
	case path == "-" && ff.stdin != nil:
		data, err = io.ReadAll(ff.stdin)
		text := strings.TrimRight(string(data), "\r\n")
		ff.stdinText = &text
	default:
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(data), "\r\n"), nil
}

func (ff *fieldFlags) fromEnv(name string) (string, error) {
	v := ff.getenv(name)
	if v == "" {
		return "", fmt.Errorf("environment variable %s is not set, or empty", name)
	}
	return v, nil
}

// fieldValue is a flag that hands its text to set; a bool one may stand
// alone (--smtp-enabled).
type fieldValue struct {
	isBool bool
	set    func(string) error
}

func (v *fieldValue) String() string     { return "" }
func (v *fieldValue) Set(s string) error { return v.set(s) }
func (v *fieldValue) IsBoolFlag() bool   { return v.isBool }
