package provision

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestParseSeedFile(t *testing.T) {
	t.Parallel()
	f, err := ParseFile("testdata/seed.yaml", env(map[string]string{"HELPDESK_CLIENT_SECRET": "s3cret"}))
	require.NoError(t, err)
	require.Len(t, f.Mailboxes, 2)
	require.Len(t, f.TicketTypes, 2)

	help := f.Mailboxes[0]
	require.Equal(t, "helpdesk", help.Name)
	require.Equal(t, 4, help.Line)
	for key, want := range map[string]string{
		"client_secret": "s3cret", "host": "outlook.office365.com", "smtp_enabled": "true",
		"client_secret_expires_at": "2027-06-30", "move_to_folder": "Archive",
	} {
		got, ok := help.Value(key)
		require.True(t, ok, key)
		require.Equal(t, want, got, key)
	}
	pw, ok := f.Mailboxes[1].Value("password")
	require.True(t, ok)
	require.Equal(t, "pop-secret", pw, "password_file is read relative to the seed file, without its newline")

	ack, _ := f.TicketTypes[0].Value("ack_text")
	require.Equal(t, "Hello {name},\n\nwe have your message \"{subject}\" as ticket {ticket}.\n", ack)
}

func TestParseSeedErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "key.pem"), []byte("PEM\n"), 0o600))
	tests := []struct {
		name, yaml, want string
	}{
		{"empty", "", "the file is empty"},
		{"not yaml", "mailboxes: [", "not valid YAML"},
		{"not a mapping", "- a\n- b\n", "seed.yaml:1: the file must be a mapping"},
		{"unknown section", "mailbox:\n  - name: a\n", `seed.yaml:1: unknown section "mailbox"`},
		{"list expected", "mailboxes:\n  name: a\n", "seed.yaml:2: expected a list, each mailbox starting with - name:"},
		{"unknown key", "mailboxes:\n  - name: a\n    hots: x\n", `seed.yaml:3: unknown mailbox setting "hots"`},
		{"misspelt key", "mailboxes:\n  - name: a\n    clientId: x\n", "(did you mean client_id?)"},
		{"ticket type key in a mailbox", "mailboxes:\n  - name: a\n    admin_email: x\n", `unknown mailbox setting "admin_email"`},
		{"_file of a plain setting", "mailboxes:\n  - name: a\n    host_file: x\n", `unknown mailbox setting "host_file"`},
		{"no name", "mailboxes:\n  - host: x\n", "seed.yaml:2: a mailbox without a name"},
		{"twice", "mailboxes:\n  - name: a\n  - name: b\n  - name: a\n", `seed.yaml:4: "a" is declared twice (first at line 2)`},
		{"key twice", "mailboxes:\n  - name: a\n    host: x\n    host: y\n", "seed.yaml:4: host is set twice"},
		{"list value", "mailboxes:\n  - name: a\n    host: [x]\n", "seed.yaml:3: host must be a single value"},
		{"unset variable", "mailboxes:\n  - name: a\n    client_secret: ${NOPE}\n", "seed.yaml:3: client_secret: environment variable NOPE is not set"},
		{"unclosed", "mailboxes:\n  - name: a\n    client_secret: Sup3r${ecret\n", "client_secret: ${ without a closing }"},
		{"missing file", "mailboxes:\n  - name: a\n    password_file: nope.txt\n", "seed.yaml:3: password_file: open"},
		{"second document", "mailboxes:\n  - name: a\n---\nticket_types:\n  - name: t\n", "seed.yaml:3: a second YAML document"},
		{"second section", "mailboxes:\n  - name: a\nmailboxes:\n  - name: b\n", "seed.yaml:3: a second mailboxes: section"},
		{"unknown ticket type key", "ticket_types:\n  - name: a\n    acknowledgement: true\n", `unknown ticket type setting "acknowledgement"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.yaml), filepath.Join(dir, "seed.yaml"), env(nil))
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
			require.NotContains(t, err.Error(), "Sup3r", "a value is never quoted: it may be a secret")
		})
	}
}

func TestParseSeedValues(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "key.pem"), []byte("-----BEGIN KEY-----\nabc\n-----END KEY-----\n"), 0o600))
	src := strings.Join([]string{
		"mailboxes:",
		"  - name: a",
		"    password: 'p$$x${PW}y$${LITERAL}$z'",
		"    client_private_key_file: key.pem",
		"    move_to_folder: ~",
		"ticket_types:",
	}, "\n")
	f, err := Parse([]byte(src), filepath.Join(dir, "seed.yaml"), env(map[string]string{"PW": "-from-env-"}))
	require.NoError(t, err)
	pw, _ := f.Mailboxes[0].Value("password")
	require.Equal(t, "p$$x-from-env-y${LITERAL}$z", pw, "only ${NAME} expands; $${ is a literal ${")
	key, _ := f.Mailboxes[0].Value("client_private_key")
	require.Equal(t, "-----BEGIN KEY-----\nabc\n-----END KEY-----", key)
	move, ok := f.Mailboxes[0].Value("move_to_folder")
	require.True(t, ok)
	require.Empty(t, move, "~ sets a setting back to its default")
	require.Empty(t, f.TicketTypes)
}
