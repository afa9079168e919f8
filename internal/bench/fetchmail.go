package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// fetchmail runs Debian's fetchmail over the same mail, through the same
// proxy, once every pass of the fetcher is done: every message of every
// mailbox (--all --keep), over TLS checked against the same certificate,
// delivered to one BSMTP file (no delivery agent forked per message).
func (r *run) fetchmail(ctx context.Context) (*Fetchmail, error) {
	bin, err := exec.LookPath("fetchmail")
	if err != nil {
		return nil, errors.New("fetchmail is not installed (apt-get install fetchmail)")
	}
	f := &Fetchmail{Version: fetchmailVersion(ctx, bin)}
	dir := filepath.Join(r.dir, "fetchmail")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	tokensBefore := r.tokens.Requests()
	secrets := r.passwords
	f.Login, f.LoginNote = "password", "this fetchmail has no XOAUTH2 (\"Invalid authentication `xoauth2'\"), so each user logs in with a password from Dovecot's passwd file"
	if fetchmailHasXOAUTH2(ctx, bin) {
		f.Login, f.LoginNote = "xoauth2", "the access token as the password, checked by Dovecot's introspection like the fetcher's"
		if secrets, err = r.accessTokens(ctx); err != nil {
			return nil, err
		}
	}
	rc := filepath.Join(dir, "fetchmailrc")
	if err := os.WriteFile(rc, r.fetchmailrc(f.Login, secrets), 0o600); err != nil {
		return nil, err
	}
	bsmtp := filepath.Join(dir, "out.bsmtp")
	logFile, err := os.Create(filepath.Join(dir, "fetchmail.log"))
	if err != nil {
		return nil, err
	}
	defer func() { _ = logFile.Close() }()
	args := []string{"-N", "--nosyslog", "--fetchmailrc", rc,
		"--idfile", filepath.Join(dir, "fetchids"), "--pidfile", filepath.Join(dir, "fetchmail.pid"),
		"--all", "--keep", "--bsmtp", bsmtp,
		"--ssl", "--sslcertck", "--sslcertfile", r.caFile}
	env := []string{"HOME=" + dir, "FETCHMAILHOME=" + dir, "PATH=" + os.Getenv("PATH"), "LC_ALL=C"}
	proxyBefore := r.proxy.Stats()
	f.Load = loadAverage()
	m, err := runMeasured(ctx, childSpec{path: bin, args: args, env: env, stdout: logFile, stderr: logFile})
	if err != nil {
		return nil, err
	}
	r.settle()
	traffic := r.proxy.Stats().Sub(proxyBefore)
	if f.Delivered, f.Bytes, err = countBSMTP(bsmtp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	f.measure(m, traffic, r.tokens.Requests()-tokensBefore, f.Delivered, f.Bytes)
	if first := r.firstSeconds(); first > 0 {
		f.Ratio = f.Seconds / first
	}
	// 0: mail retrieved; 1: none (an empty scenario); anything else failed.
	if f.ExitCode > 1 {
		r.progress("fetchmail exited %d; its log: %s", f.ExitCode, tail(filepath.Join(dir, "fetchmail.log"), 5))
	}
	return f, nil
}

func (r *run) firstSeconds() float64 { return r.report.firstSeconds() }

// fetchmailrc has one poll entry per mailbox (fetchmail polls them one
// after the other), each through the proxy.
func (r *run) fetchmailrc(auth string, secrets map[string]string) []byte {
	local := "root"
	if u, err := user.Current(); err == nil {
		local = u.Username
	}
	proto := strings.ToUpper(r.opts.Protocol)
	var b bytes.Buffer
	b.WriteString("# written by fetcher bench\nset no syslog\n")
	for i, u := range r.users {
		fmt.Fprintf(&b, "poll bench-%04d via 127.0.0.1 port %d protocol %s auth %s timeout 120\n", i+1, r.proxy.Port(), proto, auth)
		fmt.Fprintf(&b, "  user %s there with password %s is %s here sslcommonname localhost\n", strconv.Quote(u), strconv.Quote(secrets[u]), strconv.Quote(local))
	}
	return b.Bytes()
}

// accessTokens gets an access token for every user from the token server,
// as a refresh would.
func (r *run) accessTokens(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	for _, u := range r.users {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.tokens.IssueRefreshToken(clientID, u)},
			"client_id": {clientID}, "client_secret": {clientSecret}, "scope": {benchScopes}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.tokens.TokenURL(""), strings.NewReader(form.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		err = json.NewDecoder(resp.Body).Decode(&tok)
		_ = resp.Body.Close()
		if err != nil || tok.AccessToken == "" {
			return nil, fmt.Errorf("token for %s: %v (HTTP %d)", u, err, resp.StatusCode)
		}
		out[u] = tok.AccessToken
	}
	return out, nil
}

// fetchmailHasXOAUTH2 asks fetchmail whether it takes --auth xoauth2
// (fetchmail 7 does; 6.4 says "Invalid authentication `xoauth2'").
func fetchmailHasXOAUTH2(ctx context.Context, bin string) bool {
	out, _ := exec.CommandContext(ctx, bin, "--auth", "xoauth2", "--version").CombinedOutput()
	return !bytes.Contains(out, []byte("Invalid authentication")) && bytes.Contains(out, []byte("fetchmail release"))
}

func fetchmailVersion(ctx context.Context, bin string) string {
	out, _ := exec.CommandContext(ctx, bin, "--version").CombinedOutput()
	for l := range strings.SplitSeq(string(out), "\n") {
		if _, v, ok := strings.Cut(l, "This is fetchmail release "); ok {
			v, _, _ = strings.Cut(v, "+")
			return "fetchmail " + v
		}
	}
	return "fetchmail"
}

// countBSMTP counts the messages in a BSMTP file (its MAIL FROM lines) and
// its size.
func countBSMTP(path string) (int, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		if bytes.HasPrefix(sc.Bytes(), []byte("MAIL FROM:")) {
			n++
		}
	}
	return n, st.Size(), sc.Err()
}

// tail is the last n lines of a file, on one line.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], " | ")
}
