package mailboxtest

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"text/template"
	"time"
)

// Dovecot is a real Dovecot (from Debian's dovecot-imapd and dovecot-pop3d
// packages) started for one test, serving IMAP and POP3 over implicit TLS
// and STARTTLS from Maildirs in a temp dir. XOAUTH2 and OAUTHBEARER logins
// are checked by Dovecot's oauth2 passdb against IntrospectionURL; plain
// logins against a passwd file.
type Dovecot struct {
	Dir  string
	Cert *Cert
	// Ports by listener name: imap, imaps, pop3, pop3s.
	Ports map[string]int

	cmd *exec.Cmd
	seq atomic.Int64
}

// DovecotBinary is where Debian installs Dovecot.
const DovecotBinary = "/usr/sbin/dovecot"

// ErrNoDovecot is returned by StartDovecot when Dovecot is not installed.
var ErrNoDovecot = errors.New("dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)")

// DovecotOptions configure StartDovecot.
type DovecotOptions struct {
	// IntrospectionURL answers Dovecot's token checks: a GET with
	// "Authorization: Bearer TOKEN", answered with {"active":true,
	// "email":USER} for a valid token.
	IntrospectionURL string
	// Passwords for plain logins, by user.
	Passwords map[string]string
	// SubmissionRelay, when set (host:port), makes Dovecot also serve SMTP
	// submission (dovecot-submissiond) on Ports["submission"], with
	// STARTTLS and the same logins, relaying what it accepts to this
	// address as a trusted client: no login, no TLS.
	SubmissionRelay string
}

// StartDovecot writes a configuration into a new directory and starts
// Dovecot in the foreground; Close stops it and removes the directory.
func StartDovecot(opts DovecotOptions) (*Dovecot, error) {
	if _, err := os.Stat(DovecotBinary); err != nil {
		return nil, ErrNoDovecot
	}
	if opts.SubmissionRelay != "" && !submissionInstalled() {
		return nil, errNoSubmission
	}
	cert, err := NewCert()
	if err != nil {
		return nil, err
	}
	// Not a test's TempDir: Dovecot's unprivileged processes must be able
	// to reach the Maildirs, and a TempDir's parent is private (0700).
	dir, err := os.MkdirTemp("", "fetcher-dovecot-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	d := &Dovecot{Dir: dir, Cert: cert, Ports: map[string]int{}}
	names := []string{"imap", "imaps", "pop3", "pop3s"}
	if opts.SubmissionRelay != "" {
		names = append(names, "submission")
	}
	// A port found free can be taken by another test's server before
	// Dovecot binds it: then it is started again on other ports.
	for attempt := 1; ; attempt++ {
		err = d.startOn(opts, names)
		if err == nil || attempt == 3 || !portTaken(err) {
			break
		}
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return d, nil
}

// startOn writes the configuration with free ports for names and starts
// Dovecot.
func (d *Dovecot) startOn(opts DovecotOptions, names []string) error {
	ports, err := freePorts(len(names))
	if err != nil {
		return err
	}
	for i, name := range names {
		d.Ports[name] = ports[i]
	}
	if err := d.writeConfig(opts); err != nil {
		return err
	}
	return d.start()
}

// portTaken reports a start that failed on a port in use.
func portTaken(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "in use") || strings.Contains(msg, "duplicate listener")
}

// freePorts returns n distinct free ports: each listener stays open until
// all are chosen, so that the system cannot hand out one port twice.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

var dovecotConf = template.Must(template.New("conf").Parse(`
base_dir = {{.Dir}}/run
state_dir = {{.Dir}}/state
log_path = {{.Dir}}/dovecot.log
protocols = imap pop3{{if .Relay}} submission{{end}}
listen = 127.0.0.1
ssl = yes
ssl_cert = <{{.Dir}}/cert.pem
ssl_key = <{{.Dir}}/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = xoauth2 oauthbearer plain login
mail_location = maildir:{{.Dir}}/mail/%u
first_valid_uid = 0
first_valid_gid = 0
mail_uid = {{.UID}}
mail_gid = {{.GID}}
pop3_uidl_format = %08Xu%08Xv
service imap-login {
  inet_listener imap {
    port = {{.Ports.imap}}
  }
  inet_listener imaps {
    port = {{.Ports.imaps}}
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = {{.Ports.pop3}}
  }
  inet_listener pop3s {
    port = {{.Ports.pop3s}}
    ssl = yes
  }
}
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {{.Dir}}/oauth2.conf
}
passdb {
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN {{.Dir}}/passwd
}
userdb {
  driver = static
  args = uid={{.UID}} gid={{.GID}} home={{.Dir}}/home/%u
}
{{- if .Relay}}
{{template "submission" .}}
{{- end}}
`))

func (d *Dovecot) writeConfig(opts DovecotOptions) error {
	uid, gid := mailOwner()
	for _, sub := range []string{"run", "state", "mail", "home"} {
		if err := os.MkdirAll(filepath.Join(d.Dir, sub), 0o777); err != nil {
			return err
		}
		if err := os.Chmod(filepath.Join(d.Dir, sub), 0o777); err != nil {
			return err
		}
	}
	var conf bytes.Buffer
	data := map[string]any{"Dir": d.Dir, "Ports": d.Ports, "UID": uid, "GID": gid, "Relay": opts.SubmissionRelay}
	if err := dovecotConf.Execute(&conf, data); err != nil {
		return err
	}
	var passwd strings.Builder
	for u, p := range opts.Passwords {
		fmt.Fprintf(&passwd, "%s:{PLAIN}%s\n", u, p)
	}
	oauthConf := fmt.Sprintf("introspection_mode = auth\nintrospection_url = %s\nusername_attribute = email\nactive_attribute = active\nactive_value = true\n", opts.IntrospectionURL)
	key, err := x509.MarshalPKCS8PrivateKey(d.Cert.TLS.PrivateKey)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"dovecot.conf": conf.Bytes(),
		"oauth2.conf":  []byte(oauthConf),
		"passwd":       []byte(passwd.String()),
		"cert.pem":     d.Cert.PEM,
		"key.pem":      pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(d.Dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// mailOwner is who owns the Maildirs: the current user, or Dovecot's own
// unprivileged user when running as root (Dovecot refuses to access mail
// as root).
func mailOwner() (uid, gid int) {
	if os.Getuid() != 0 {
		return os.Getuid(), os.Getgid()
	}
	if u, err := user.Lookup("dovecot"); err == nil {
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		return uid, gid
	}
	return 65534, 65534
}

func (d *Dovecot) start() error {
	d.cmd = exec.Command(DovecotBinary, "-F", "-c", filepath.Join(d.Dir, "dovecot.conf"))
	var out bytes.Buffer
	d.cmd.Stdout, d.cmd.Stderr = &out, &out
	if err := d.cmd.Start(); err != nil {
		return fmt.Errorf("start dovecot: %w", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", d.Addr("imaps"), 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	logs := d.Log()
	d.stop()
	return fmt.Errorf("dovecot did not start: %s %s", out.String(), logs)
}

// Addr returns 127.0.0.1:port of a listener.
func (d *Dovecot) Addr(listener string) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(d.Ports[listener]))
}

// Log returns Dovecot's log so far, for failure messages.
func (d *Dovecot) Log() string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "dovecot.log"))
	return string(b)
}

// Deliver drops raw into user's INBOX as a new Maildir message, as a local
// delivery agent would.
func (d *Dovecot) Deliver(user string, raw []byte) error {
	box := filepath.Join(d.Dir, "mail", user)
	for _, sub := range []string{"", "new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(box, sub), 0o777); err != nil {
			return err
		}
		_ = os.Chmod(filepath.Join(box, sub), 0o777)
	}
	name := fmt.Sprintf("%d.M%dP%d.fetchertest", time.Now().Unix(), d.seq.Add(1), os.Getpid())
	tmp := filepath.Join(box, "tmp", name)
	if err := os.WriteFile(tmp, raw, 0o666); err != nil {
		return err
	}
	_ = os.Chmod(tmp, 0o666)
	return os.Rename(tmp, filepath.Join(box, "new", name))
}

// MaildirCount counts the messages in user's INBOX on disk (new and cur).
func (d *Dovecot) MaildirCount(user string) int {
	n := 0
	for _, sub := range []string{"new", "cur"} {
		entries, _ := os.ReadDir(filepath.Join(d.Dir, "mail", user, sub))
		n += len(entries)
	}
	return n
}

// Close stops Dovecot and removes its directory.
func (d *Dovecot) Close() error {
	d.stop()
	return os.RemoveAll(d.Dir)
}

func (d *Dovecot) stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-done
	}
}
