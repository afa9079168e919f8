package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// docBlocks returns the fenced blocks of a markdown file with the given
// info string ("" for bare fences), in order.
func docBlocks(t *testing.T, path, lang string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []string
	var block *strings.Builder
	var info string
	for _, line := range strings.SplitAfter(string(data), "\n") {
		fence := strings.TrimSpace(line)
		switch {
		case block == nil && strings.HasPrefix(fence, "```"):
			block, info = &strings.Builder{}, strings.TrimPrefix(fence, "```")
		case block != nil && fence == "```":
			if info == lang {
				out = append(out, block.String())
			}
			block = nil
		case block != nil:
			block.WriteString(line)
		}
	}
	return out
}

// TestProvisioningDocs runs docs/provisioning.md as written: its seed file
// is the one the provision package's tests use, seeding it prints the
// output the page shows, and the page's add and set commands work.
func TestProvisioningDocs(t *testing.T) {
	t.Parallel()
	const doc = "../../docs/provisioning.md"
	seedFile := docBlocks(t, doc, "yaml")[0]
	want, err := os.ReadFile("../../internal/provision/testdata/seed.yaml")
	require.NoError(t, err)
	require.Equal(t, string(want), seedFile, "the page's seed file is internal/provision/testdata/seed.yaml")
	output := docBlocks(t, doc, "")[0]

	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := storetest.Open(t, d)
			dir := t.TempDir()
			path := filepath.Join(dir, "seed.yaml")
			require.NoError(t, os.WriteFile(path, []byte(seedFile), 0o600))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "billing.password"), []byte("pop-secret\n"), 0o600))
			env := map[string]string{"DATABASE_URL": db.URL(), "HELPDESK_CLIENT_SECRET": "the-secret-value"}

			dry := runMain(t, ctx, env, "seed", "--dry-run", path)
			require.Equal(t, 0, dry.code, dry.stderr)
			require.Contains(t, dry.stdout, "dry run, nothing written: 4 to create")
			all, err := db.Mailboxes().List(ctx)
			require.NoError(t, err)
			require.Empty(t, all, "a dry run writes nothing")

			res := runMain(t, ctx, env, "seed", path)
			require.Equal(t, 0, res.code, res.stderr)
			require.Equal(t, output, res.stdout, "the output docs/provisioning.md shows")
			again := runMain(t, ctx, env, "seed", path)
			require.Equal(t, 0, again.code, again.stderr)
			require.Contains(t, again.stdout, "0 created, 0 updated, 4 unchanged")

			for _, cmd := range docCommands(docBlocks(t, doc, "sh")[1:]) {
				if cmd[0] == "authorize" || cmd[0] == "mailbox" && cmd[1] == "test" {
					continue // need a provider and a server: covered by their own tests
				}
				res := runMain(t, ctx, env, cmd...)
				require.Equal(t, 0, res.code, "%v: %s", cmd, res.stderr)
				requireNoSecret(t, res, "the-secret-value", "pop-secret")
			}
			mb, err := db.Mailboxes().GetByName(ctx, "support")
			require.NoError(t, err)
			require.Equal(t, "the-secret-value", mb.ClientSecret)
			require.Equal(t, "move", mb.AfterFetch)
			require.Equal(t, "Archive", mb.MoveToFolder)
			require.Equal(t, "outlook.office365.com", mb.Host, "the --dry-run set wrote nothing")
			require.True(t, mb.SMTPEnabled)
		})
	}
}

// docCommands splits the fetcher command lines of shell blocks into
// arguments (after "fetcher"), joining continued lines.
func docCommands(blocks []string) [][]string {
	var out [][]string
	for _, b := range blocks {
		for _, line := range strings.Split(strings.ReplaceAll(b, "\\\n", " "), "\n") {
			words := strings.Fields(line)
			if len(words) < 2 || words[0] != "fetcher" {
				continue
			}
			args := words[1:]
			for i, a := range args {
				args[i] = strings.Trim(a, `"`)
			}
			out = append(out, args)
		}
	}
	return out
}

func requireNoSecret(t *testing.T, res result, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		require.NotContains(t, res.stdout+res.stderr, s)
	}
}

// TestMailboxAddAndSet: add takes secrets from standard input, a file or
// the environment and never as a value; set changes only what it names;
// a refused row exits 2 naming the setting and writes nothing.
func TestMailboxAddAndSet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Open(t, store.SQLite)
	env := map[string]string{"DATABASE_URL": db.URL(), "PW": "env-password"}
	secretFile := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(secretFile, []byte("file-password\n"), 0o600))

	run := func(stdin string, args ...string) result {
		t.Helper()
		var out, errOut strings.Builder
		m := &Main{Stdout: &out, Stderr: &errOut, Stdin: strings.NewReader(stdin), Getenv: func(k string) string { return env[k] }}
		code := m.Run(ctx, args)
		res := result{code, out.String(), errOut.String()}
		requireNoSecret(t, res, "stdin-password", "file-password", "env-password")
		return res
	}
	res := run("stdin-password\n", "mailbox", "add", "--protocol", "pop3", "--host", "pop.example.org",
		"--username", "a@example.org", "--auth-type", "password", "--password-file", "-", "--use-ssl=false",
		"--starttls", "pop")
	require.Equal(t, 0, res.code, res.stderr)
	require.Equal(t, "created mailbox \"pop\": name, protocol, host, port, use_ssl, starttls, username, auth_type, password\n"+
		"1 created, 0 updated, 0 unchanged\n", res.stdout)
	mb, err := db.Mailboxes().GetByName(ctx, "pop")
	require.NoError(t, err)
	require.Equal(t, "stdin-password", mb.Password)
	require.Equal(t, 110, mb.Port, "POP3 without TLS from the first byte")
	require.False(t, mb.UseSSL, "an explicit false is stored")
	require.True(t, mb.StartTLS)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
		password string
	}{
		{"password from a file", []string{"--password-file", secretFile}, 0, `updated mailbox "pop": password`, "file-password"},
		{"password from the environment", []string{"--password-env", "PW"}, 0, `updated mailbox "pop": password`, "env-password"},
		{"no plain secret flag", []string{"--password", "x"}, 2, "flag provided but not defined: -password", "env-password"},
		{"unset variable", []string{"--password-env", "NOPE"}, 2, "environment variable NOPE is not set", "env-password"},
		{"refused row", []string{"--protocol", "imap4"}, 2, `mailbox setting protocol: "imap4" is not a protocol`, "env-password"},
		{"no flags", nil, 2, "changes nothing without flags", "env-password"},
		{"standard input twice", []string{"--password-file", "-", "--refresh-token-file", "-"}, 2, "--password-file and --refresh-token-file both read standard input", "env-password"},
		{"same value", []string{"--host", "pop.example.org"}, 0, `unchanged mailbox "pop"`, "env-password"},
	}
	for _, tt := range tests {
		res := run("", append([]string{"mailbox", "set", "pop"}, tt.args...)...)
		require.Equal(t, tt.wantCode, res.code, "%s: %s%s", tt.name, res.stdout, res.stderr)
		require.Contains(t, res.stdout+res.stderr, tt.want, tt.name)
		mb, err := db.Mailboxes().GetByName(ctx, "pop")
		require.NoError(t, err)
		require.Equal(t, tt.password, mb.Password, tt.name)
		require.Equal(t, "pop3", mb.Protocol, tt.name)
	}

	res = run("", "mailbox", "add", "--protocol", "imap", "--host", "h.example.org", "--username", "u", "--auth-type", "password", "pop")
	require.Equal(t, 2, res.code)
	require.Contains(t, res.stderr, `a mailbox named "pop" exists already`)
	res = run("", "mailbox", "set", "nobody", "--port", "1")
	require.Equal(t, 2, res.code)
	require.Contains(t, res.stderr, `no mailbox has the name or id "nobody"`)
}

// TestKubernetesSeedJob: the seed file in deploy/kubernetes/seed-job.yaml's
// ConfigMap is one fetcher seed accepts.
func TestKubernetesSeedJob(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../deploy/kubernetes/seed-job.yaml")
	require.NoError(t, err)
	var cm struct {
		Kind string            `yaml:"kind"`
		Data map[string]string `yaml:"data"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	for cm.Kind != "ConfigMap" {
		require.NoError(t, dec.Decode(&cm), "a ConfigMap in seed-job.yaml")
	}
	path := filepath.Join(t.TempDir(), "seed.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cm.Data["seed.yaml"]), 0o600))
	db := storetest.Open(t, store.SQLite)
	env := map[string]string{"DATABASE_URL": db.URL(), "HELPDESK_CLIENT_SECRET": "from-the-secret"}
	res := runMain(t, context.Background(), env, "seed", path)
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stdout, "2 created, 0 updated, 0 unchanged")
}
