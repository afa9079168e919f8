package main

// The docs' commands are the ones the tests run: every fetcher command in
// the repository's Markdown goes through the real command parser (Main.Run,
// so a command or flag added later needs no change here), the make targets
// README uses exist, README's test command is the one .ci/run runs, and the
// documented read-only commands run for real against an embedded database.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/store"
)

// repoRoot is the repository's root, two folders up from cmd/fetcher.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	require.Contains(t, string(gomod), "module github.com/fetcherhq/fetcher\n", "repository root")
	return root
}

// allDocs reads every Markdown file of the repository.
func allDocs(t *testing.T) ([]string, map[string]docFile) {
	t.Helper()
	root := repoRoot(t)
	files, err := markdownFiles(root)
	require.NoError(t, err)
	require.Contains(t, files, "README.md")
	docs := map[string]docFile{}
	for _, f := range files {
		src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		require.NoError(t, err)
		docs[f] = extractDoc(f, src)
	}
	return files, docs
}

// docRun runs the fetcher in-process with env as its whole environment.
func docRun(ctx context.Context, env map[string]string, args []string) result {
	var out, errOut bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errOut, Stdin: strings.NewReader(""), Getenv: func(k string) string { return env[k] }}
	code := m.Run(ctx, args)
	return result{code, out.String(), errOut.String()}
}

// sandboxEnv is env with the database replaced by sandbox.
func sandboxEnv(env map[string]string, sandbox string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	delete(out, "FETCHER_DATABASE_URL")
	out["DATABASE_URL"] = sandbox
	return out
}

// withHelp is args with --help added after the doc's flags and operands
// (before a "--", after which it would be an operand).
func withHelp(args []string) []string {
	if i := slices.Index(args, "--"); i >= 0 {
		return slices.Concat(args[:i], []string{"--help"}, args[i:])
	}
	return append(slices.Clone(args), "--help")
}

// complaint is what the fetcher said about its arguments: its "fetcher: …"
// lines and the flag package's, not the usage text around them.
func complaint(stderr string) string {
	var picked []string
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimPrefix(strings.TrimSpace(l), "fetcher: ")
		if strings.HasPrefix(strings.TrimSpace(l), "Usage") {
			break
		}
		if l != "" && !slices.Contains(picked, l) {
			picked = append(picked, l)
		}
	}
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "fetcher: ") && !slices.Contains(picked, l[len("fetcher: "):]) {
			picked = append(picked, l[len("fetcher: "):])
		}
	}
	if len(picked) == 0 {
		return "(nothing on stderr)"
	}
	return strings.Join(picked, "; ")
}

// checkFetcherCommand runs a documented command's arguments through the
// real parser: with --help added, a command that parses flags checks the
// subcommand, every flag and its value and the environment the line sets,
// then prints its usage and stops before doing anything. A command that
// takes no flags at all (secrets genkey) rejects --help as an argument;
// then the line runs as written, with a cancelled context and the database
// sandbox (a URL where there is none), and must not be refused as a usage
// error (status 2), which any flag or stray argument on it would be.
func checkFetcherCommand(c fetcherCommand, sandbox string) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // nothing documented may get further than its flags here
	args := withHelp(c.Check)
	r := docRun(ctx, c.Env, args)
	if r.code == exitOK && strings.Contains(r.stdout+r.stderr, "Usage") {
		return nil
	}
	how := "fetcher " + strings.Join(quoteArgs(args), " ")
	if r.code == exitUsage && strings.Contains(r.stderr, `"--help"`) {
		r = docRun(ctx, sandboxEnv(c.Env, sandbox), c.Check)
		if r.code != exitUsage {
			return nil
		}
		how = "fetcher " + strings.Join(quoteArgs(c.Check), " ")
	}
	what := "refuses it (exit status " + strconv.Itoa(r.code) + ")"
	if r.code == exitOK {
		what = "did not show its usage: does this command read its flags?"
	}
	return fmt.Errorf("%s: the documented command `%s` does not parse: %s: %s\n\tparsed as: %s",
		c.docSource, c.Text, what, complaint(r.stderr), how)
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if a == "" || strings.ContainsAny(a, " \t'\"$|&;<>()") {
			out[i] = fmt.Sprintf("%q", a)
		}
	}
	return out
}

// checkFlagRow checks that `fetcher run` takes a flag a settings table
// lists. Its value is not known, so the flag is given "x": a defined flag
// is rejected for its value or shows the usage, an undefined one for being
// undefined.
func checkFlagRow(f flagRow) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := docRun(ctx, nil, []string{"run", f.Flag + "=x", "--help"})
	if strings.Contains(r.stderr, "flag provided but not defined") || (r.code != exitOK && r.code != exitUsage) {
		return fmt.Errorf("%s: the settings table lists %s, which fetcher run does not take: %s", f.docSource, f.Flag, complaint(r.stderr))
	}
	return nil
}

func TestDocsCommands(t *testing.T) {
	t.Parallel()
	files, docs := allDocs(t)
	sandbox := "sqlite:" + filepath.Join(t.TempDir(), "not-there", "fetcher.db")
	total := 0
	for _, f := range files {
		d := docs[f]
		if len(d.Fetcher)+len(d.Flags) == 0 {
			continue
		}
		fenced := countFenced(d)
		t.Logf("%s: %d fetcher commands (%d in fenced blocks, %d in code spans), %d flags in settings tables",
			f, len(d.Fetcher), fenced, len(d.Fetcher)-fenced, len(d.Flags))
		total += len(d.Fetcher)
		for _, c := range d.Fetcher {
			t.Run(fmt.Sprintf("%s fetcher %s", c.docSource, strings.Join(c.Check, " ")), func(t *testing.T) {
				t.Parallel()
				if err := checkFetcherCommand(c, sandbox); err != nil {
					t.Error(err)
				}
			})
		}
		for _, fl := range d.Flags {
			t.Run(fmt.Sprintf("%s run %s", fl.docSource, fl.Flag), func(t *testing.T) {
				t.Parallel()
				if err := checkFlagRow(fl); err != nil {
					t.Error(err)
				}
			})
		}
	}
	// The extraction itself must keep finding what README shows.
	require.GreaterOrEqual(t, countFenced(docs["README.md"]), 6, "README.md's fenced fetcher commands: has the extraction broken?")
	require.Greater(t, total, 30, "fetcher commands in all docs: has the extraction broken?")
}

func countFenced(d docFile) int {
	n := 0
	for _, c := range d.Fetcher {
		if !c.Inline {
			n++
		}
	}
	return n
}

// readmeTestHeading is the README section whose fenced block is the test
// command.
var readmeTestHeading = regexp.MustCompile(`(?i)\btests?\b`)

// shellKeywords may come before a command in a script line.
var shellKeywords = map[string]bool{"if": true, "then": true, "else": true, "elif": true, "do": true, "while": true, "until": true, "!": true, "time": true, "exec": true}

func TestDocsMakeAndCI(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	files, docs := allDocs(t)
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	require.NoError(t, err)
	targets := makeTargets(makefile)
	require.Contains(t, targets, "help", "Makefile targets: has the extraction broken?")

	t.Run("make targets", func(t *testing.T) {
		n := 0
		for _, f := range files {
			for _, c := range docs[f].Make {
				for _, target := range c.Targets {
					n++
					if !targets[target] {
						t.Errorf("%s: `%s`: the Makefile has no target %q (it has: %s)", c.docSource, c.Text, target, strings.Join(sortedKeys(targets), ", "))
					}
				}
			}
		}
		t.Logf("%d make targets in the docs", n)
		require.Positive(t, n, "README.md shows make targets: has the extraction broken?")
	})

	t.Run("go packages", func(t *testing.T) {
		for _, f := range files {
			for _, c := range docs[f].Go {
				if !slices.Contains([]string{"build", "run", "test", "vet", "install", "list"}, c.Args[0]) {
					continue
				}
				for _, a := range c.Args[1:] {
					if !strings.HasPrefix(a, "./") {
						continue
					}
					dir := strings.TrimSuffix(strings.TrimSuffix(a, "..."), "/")
					if st, err := os.Stat(filepath.Join(root, filepath.FromSlash(dir))); err != nil || !st.IsDir() {
						t.Errorf("%s: `%s`: there is no package folder %s", c.docSource, c.Text, a)
					}
				}
			}
		}
	})

	t.Run("README's test command is the one .ci/run runs", func(t *testing.T) {
		ci, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
		require.NoError(t, err)
		ciCommands := scriptCommands(ci)
		var shown []shellCommand
		for _, c := range docs["README.md"].Shell {
			if !readmeTestHeading.MatchString(c.Heading) {
				continue
			}
			prog := ""
			for _, w := range c.Words {
				if _, _, ok := assignment(shTok{text: w, quoted: -1}); !ok {
					prog = w
					break
				}
			}
			if prog == "make" || prog == "go" {
				shown = append(shown, c)
			}
		}
		require.NotEmpty(t, shown, "README.md shows no test command (make … or go test …) in a fenced block under a heading about tests")
		for _, c := range shown {
			if !runsCommand(ciCommands, c.Words) {
				t.Errorf("%s: README's test command `%s` is not a command .ci/run runs; .ci/run runs: %s",
					c.docSource, strings.Join(c.Words, " "), ciSummary(ciCommands))
			}
		}
	})
}

// runsCommand reports whether a script's commands include words exactly,
// as a command of its own (after if, then, do, !…).
func runsCommand(script [][]string, words []string) bool {
	for _, c := range script {
		for len(c) > 0 && shellKeywords[c[0]] {
			c = c[1:]
		}
		if slices.Equal(c, words) {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ciSummary names the make and go commands a script runs.
func ciSummary(cmds [][]string) string {
	var out []string
	for _, c := range cmds {
		for len(c) > 0 && shellKeywords[c[0]] {
			c = c[1:]
		}
		if len(c) > 0 && (c[0] == "make" || c[0] == "go") {
			out = append(out, "`"+strings.Join(c, " ")+"`")
		}
	}
	return strings.Join(out, ", ")
}

// readOnlyCommands are the documented commands the end to end test runs:
// they only read the database (migrate, which is idempotent, prepares it).
var readOnlyCommands = [][]string{{"status"}, {"mailbox", "list"}, {"mailbox", "show"}, {"secrets", "status"}}

func isCommand(args []string, path []string) bool {
	return len(args) >= len(path) && slices.Equal(args[:len(path)], path)
}

// TestDocsReadOnlyCommandsRun runs the documented `fetcher migrate` on a
// new embedded database, adds the docs' example mailbox, and then every
// documented read-only command exactly as written (placeholders filled,
// optional parts left out).
func TestDocsReadOnlyCommandsRun(t *testing.T) {
	t.Parallel()
	files, docs := allDocs(t)
	url := "sqlite:" + filepath.Join(t.TempDir(), "fetcher.db")
	var migrates, reads []fetcherCommand
	for _, f := range files {
		for _, c := range docs[f].Fetcher {
			switch {
			case c.Bare || slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(strings.TrimLeft(a, "-"), "database") }):
			case slices.Equal(c.Args, []string{"migrate"}):
				migrates = append(migrates, c)
			case slices.ContainsFunc(readOnlyCommands, func(p []string) bool { return isCommand(c.Args, p) }):
				reads = append(reads, c)
			}
		}
	}
	require.NotEmpty(t, migrates, "the docs show no `fetcher migrate`")
	ctx := context.Background()
	for i, c := range migrates {
		r := docRun(ctx, sandboxEnv(c.Env, url), c.Args)
		require.Equal(t, exitOK, r.code, "%s: `%s` failed: %s", c.docSource, c.Text, complaint(r.stderr))
		require.Contains(t, r.stdout, "migrations applied", "%s: `%s`", c.docSource, c.Text)
		if i == 0 {
			require.NotRegexp(t, `(^|[^0-9])0 migrations applied`, r.stdout, "%s: `%s` on a new database", c.docSource, c.Text)
		}
	}
	db, err := store.Open(ctx, url)
	require.NoError(t, err)
	require.NoError(t, db.Exec(ctx, `INSERT INTO mailboxes
		(name, protocol, host, port, use_ssl, username, oauth_provider, tenant_id, client_id, client_secret, refresh_token)
		VALUES (?, 'imap', 'outlook.office365.com', 993, true, 'support@contoso.com', 'microsoft', 'contoso.onmicrosoft.com',
		'11111111-2222-3333-4444-555555555555', 'client-secret', 'refresh-token')`, docMailbox))
	require.NoError(t, db.Close())

	var ran [][]string
	for _, c := range reads {
		t.Run(fmt.Sprintf("%s fetcher %s", c.docSource, strings.Join(c.Args, " ")), func(t *testing.T) {
			r := docRun(ctx, sandboxEnv(c.Env, url), c.Args)
			if r.code != exitOK {
				t.Fatalf("%s: the documented command `%s` (run as fetcher %s) exited %d: %s", c.docSource, c.Text,
					strings.Join(quoteArgs(c.Args), " "), r.code, complaint(r.stderr))
			}
			if !isCommand(c.Args, []string{"secrets"}) && !strings.Contains(r.stdout, docMailbox) {
				t.Fatalf("%s: `%s` does not show the mailbox %q:\n%s", c.docSource, c.Text, docMailbox, r.stdout)
			}
		})
		ran = append(ran, c.Args)
	}
	for _, p := range [][]string{{"status"}, {"mailbox", "list"}} {
		require.True(t, slices.ContainsFunc(ran, func(a []string) bool { return isCommand(a, p) }),
			"the docs no longer show `fetcher %s`: the end to end test runs nothing for it", strings.Join(p, " "))
	}
}

// TestDocsExtraction pins down how the commands are read: continuation
// lines, prompts, environment, comments, here-documents, synopses.
func TestDocsExtraction(t *testing.T) {
	t.Parallel()
	md := "# Try\n" + // 1
		"\n" + // 2
		"```sh\n" + // 3
		"FETCHER_LOG_LEVEL=debug fetcher run \\\n" + // 4
		"    --once   # one pass\n" + // 5
		"export DATABASE_URL='postgres://u@h/db'\n" + // 6
		"./fetcher status --format json | jq . # or: ./fetcher status --wide\n" + // 7
		"psql \"$DATABASE_URL\" <<'SQL'\n" + // 8
		"fetcher not-a-command\n" + // 9
		"SQL\n" + // 10
		"go run ./cmd/fetcher demo --keep-db\n" + // 11
		"docker compose run --rm fetcher secrets genkey\n" + // 12
		"make test FUZZTIME=1s 2>&1 | tee log\n" + // 13
		"```\n" + // 14
		"\n" + // 15
		"```console\n" + // 16
		"$ fetcher mailbox show NAME\n" + // 17
		"fetcher: no mailbox has the name\n" + // 18
		"$ fetcher authorize --device \\\n" + // 19
		"> \"Support inbox\"\n" + // 20
		"```\n" + // 21
		"\n" + // 22
		"Use `fetcher secrets genkey | status | rotate`, `fetcher status [--format table|json] [--wide]`,\n" + // 23
		"`fetcher mailbox enable|disable NAME|ID` and `fetcher authorize [--device | --admin-consent]\n" + // 24
		"[--timeout 5m, at most 1h] MAILBOX`; `fetcher status >/dev/null || alert`; `fetcher mailbox show <name>`;\n" + // 25
		"``fetcher run`` and `make lint`.\n" + // 26
		"\n" + // 27
		"| flag | environment |\n" + // 28
		"|---|---|\n" + // 29
		"| `--interval` | `FETCHER_INTERVAL` |\n" + // 30
		"| | `FETCHER_ENV` |\n" // 31
	d := extractDoc("x.md", []byte(md))
	type got struct {
		Line        int
		Inline      bool
		Bare        bool
		Env         map[string]string
		Args, Check []string
	}
	var cmds []got
	for _, c := range d.Fetcher {
		require.Equal(t, "x.md", c.File)
		cmds = append(cmds, got{c.Line, c.Inline, c.Bare, c.Env, c.Args, c.Check})
	}
	e := map[string]string{}
	db := map[string]string{"DATABASE_URL": "postgres://u@h/db"}
	require.Equal(t, []got{
		{4, false, false, map[string]string{"FETCHER_LOG_LEVEL": "debug"}, []string{"run", "--once"}, []string{"run", "--once"}},
		{7, false, false, db, []string{"status", "--format", "json"}, []string{"status", "--format", "json"}},
		{7, false, false, db, []string{"status", "--wide"}, []string{"status", "--wide"}},
		{11, false, false, db, []string{"demo", "--keep-db"}, []string{"demo", "--keep-db"}},
		{12, false, false, db, []string{"secrets", "genkey"}, []string{"secrets", "genkey"}},
		{17, false, false, db, []string{"mailbox", "show", docMailbox}, []string{"mailbox", "show", docMailbox}},
		{19, false, false, db, []string{"authorize", "--device", docMailbox}, []string{"authorize", "--device", docMailbox}},
		{23, true, true, e, []string{"secrets", "genkey"}, []string{"secrets", "genkey"}},
		{23, true, true, e, []string{"secrets", "status"}, []string{"secrets", "status"}},
		{23, true, true, e, []string{"secrets", "rotate"}, []string{"secrets", "rotate"}},
		{23, true, false, e, []string{"status"}, []string{"status", "--format", "table", "--wide"}},
		{24, true, false, e, []string{"mailbox", "enable", docMailbox}, []string{"mailbox", "enable", docMailbox}},
		{24, true, false, e, []string{"mailbox", "disable", docMailbox}, []string{"mailbox", "disable", docMailbox}},
		{24, true, false, e, []string{"authorize", docMailbox}, []string{"authorize", "--device", "--admin-consent", "--timeout", "5m", docMailbox}},
		{25, true, false, e, []string{"status"}, []string{"status"}},
		{25, true, false, e, []string{"mailbox", "show", docMailbox}, []string{"mailbox", "show", docMailbox}},
		{26, true, true, e, []string{"run"}, []string{"run"}},
	}, cmds)

	var makes [][]string
	for _, c := range d.Make {
		makes = append(makes, append([]string{strconv.Itoa(c.Line)}, c.Targets...))
	}
	require.Equal(t, [][]string{{"13", "test"}, {"26", "lint"}}, makes)
	require.Len(t, d.Go, 1)
	require.Equal(t, []string{"run", "./cmd/fetcher", "demo", "--keep-db"}, d.Go[0].Args)
	require.Len(t, d.Flags, 1)
	require.Equal(t, flagRow{docSource{"x.md", 30, "`--interval`"}, "--interval"}, d.Flags[0])
	var shell []string
	for _, c := range d.Shell {
		if c.Heading == "Try" {
			shell = append(shell, strings.Join(c.Words, " "))
		}
	}
	require.Contains(t, shell, "make test FUZZTIME=1s")

	require.Equal(t, [][]string{{"set", "-e"}, {"make", "test"}, {"tee", "/tmp/log"}, {"grep", "-q", "ok"}, {"make", "vulncheck"}},
		scriptCommands([]byte("#!/bin/sh\nset -e\n# make lint\nmake test 2>&1 | tee /tmp/log\ngrep -q 'ok' \\\n  </tmp/log\nmake vulncheck\n")))
	script := scriptCommands([]byte("log \"make test\"\nif make lint; then :; fi\nmake test/short | tee x\n"))
	require.True(t, runsCommand(script, []string{"make", "lint"}))
	require.True(t, runsCommand(script, []string{"make", "test/short"}))
	require.False(t, runsCommand(script, []string{"make", "test"}), "only named in a message")
	require.Equal(t, map[string]bool{"help": true, "test": true, "test/short": true, "a": true, "b": true},
		makeTargets([]byte("GO ?= go\nPKGS := ./...\n.PHONY: help\nhelp: ## show\n\t@grep x\ntest: lint ## all\ntest/short:\na b: c\n")))
}

// TestDocsCheckCatchesMistakes: a doc line with an unknown command,
// subcommand or flag, a bad value or a stray argument fails, naming its
// file and line; correct ones pass.
func TestDocsCheckCatchesMistakes(t *testing.T) {
	t.Parallel()
	md := "```sh\n" + // 1
		"fetcher frobnicate --once\n" + // 2
		"fetcher run --onse\n" + // 3
		"fetcher mailbox frobnicate NAME\n" + // 4
		"fetcher secrets genkey --bits 256\n" + // 5
		"FETCHER_INTERVAL=ten fetcher run --once\n" + // 6
		"fetcher migrate now\n" + // 7
		"fetcher status --format\n" + // 8
		"fetcher authorize --timeout soon NAME\n" + // 9
		"```\n" + // 10
		"`fetcher status [--verbose]`, `fetcher status [--interval ten]`, `fetcher secrets genkey | frobnicate`\n" + // 11
		"\n" + // 12
		"| flag |\n" + // 13
		"|---|\n" + // 14
		"| `--intervall` |\n" + // 15
		"\n" + // 16
		"```sh\n" + // 17
		"fetcher secrets genkey\n" + // 18
		"fetcher mailbox show NAME --log-level debug\n" + // 19
		"fetcher authorize --device --timeout 5m \"Support inbox\"\n" + // 20
		"```\n" // 21
	d := extractDoc("bad.md", []byte(md))
	sandbox := "sqlite:" + filepath.Join(t.TempDir(), "not-there", "fetcher.db")
	want := map[int][]string{
		2:  {`unknown command "frobnicate"`},
		3:  {"-onse"},
		4:  {`unknown mailbox command "frobnicate"`},
		5:  {"genkey takes no arguments"},
		6:  {"FETCHER_INTERVAL"},
		7:  {"takes no arguments"},
		8:  {"flag needs an argument: -format"},
		9:  {`invalid value "soon"`},
		11: {"-verbose", `invalid value "ten"`, `unknown secrets command "frobnicate"`},
	}
	failed := map[int][]string{}
	for _, c := range d.Fetcher {
		err := checkFetcherCommand(c, sandbox)
		if c.Line >= 18 {
			require.NoError(t, err, "a correct line")
			continue
		}
		if err != nil {
			require.Contains(t, err.Error(), fmt.Sprintf("bad.md:%d: ", c.Line))
			failed[c.Line] = append(failed[c.Line], err.Error())
		}
	}
	for line, needles := range want {
		all := strings.Join(failed[line], "\n")
		for _, n := range needles {
			require.Contains(t, all, n, "bad.md:%d", line)
		}
	}
	require.Len(t, failed[11], 3, "line 11: --verbose and --interval ten fail, secrets genkey passes")
	require.Len(t, d.Flags, 1)
	err := checkFlagRow(d.Flags[0])
	require.Error(t, err)
	require.Contains(t, err.Error(), "bad.md:15: ")
	require.Contains(t, err.Error(), "--intervall")
	require.NoError(t, checkFlagRow(flagRow{docSource{"good.md", 1, ""}, "--interval"}))
	require.NoError(t, checkFlagRow(flagRow{docSource{"good.md", 1, ""}, "--once"}))
}
