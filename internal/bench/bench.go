// Package bench measures the real fetch pipeline: it builds a scenario of
// generated mailboxes on a local mail server (the in-process one or a real
// Dovecot), puts a proxy in front of it that adds network latency and
// counts commands, creates a fresh Postgres database with the mailbox rows,
// and runs the fetcher binary itself (`fetcher run --once`) as a child
// process for each pass, timing it and reading its peak memory. It then
// checks that every delivered message was stored exactly once, and can run
// Debian's fetchmail over the same mail for comparison.
package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/fetcherhq/fetcher/internal/fetch"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
	"github.com/fetcherhq/fetcher/internal/secret"
	"github.com/fetcherhq/fetcher/internal/store"
)

// Servers and protocols.
const (
	ServerMemory  = "memory"
	ServerDovecot = "dovecot"
	ProtocolIMAP  = "imap"
	ProtocolPOP3  = "pop3"
	SizeRealistic = "realistic"
)

// Defaults of the options.
const (
	DefaultMailboxes = 1
	DefaultMessages  = 1000
	DefaultPasses    = 2
	DefaultLargeSize = 8 * MB
	DefaultSeed      = 1
)

// Options describe a benchmark run.
type Options struct {
	Server    string // ServerMemory or ServerDovecot
	Protocol  string // ProtocolIMAP or ProtocolPOP3
	Mailboxes int
	Messages  int // per mailbox
	// Size is the size of every ordinary message; 0 draws realistic sizes.
	Size int64
	Seed uint64
	// Large adds this many messages of LargeSize, spread over the
	// mailboxes.
	Large     int
	LargeSize int64
	// Delay is added to every round trip to the mail server.
	Delay time.Duration
	// Concurrency is FETCHER_CONCURRENCY for the fetcher; 0 leaves it
	// unset: the fetcher's default.
	Concurrency int
	Passes      int
	// DatabaseURL is a Postgres server (any database on it): the bench
	// creates a database of its own there and drops it after.
	DatabaseURL string
	// Keep keeps the database and the directory of logs.
	Keep bool
	// Fetchmail runs fetchmail over the same mail after the passes.
	Fetchmail bool
	// Executable is the fetcher binary run for each pass, and Env the
	// environment it inherits (the bench's own settings replace the
	// fetcher's there).
	Executable string
	Env        []string
	// Progress receives a line per step; nil discards them.
	Progress io.Writer
}

// Validate checks the options a user gives.
func (o *Options) Validate() error {
	switch {
	case o.Server != ServerMemory && o.Server != ServerDovecot:
		return fmt.Errorf("--server %q: use memory or dovecot", o.Server)
	case o.Protocol != ProtocolIMAP && o.Protocol != ProtocolPOP3:
		return fmt.Errorf("--protocol %q: use imap or pop3", o.Protocol)
	case o.Mailboxes < 1 || o.Mailboxes > 100000:
		return fmt.Errorf("--mailboxes %d: use 1 to 100000", o.Mailboxes)
	case o.Messages < 0 || o.Messages > 10000000:
		return fmt.Errorf("--messages %d: use 0 to 10000000", o.Messages)
	case o.Size != 0 && o.Size < 2*KB:
		return fmt.Errorf("--size %s: use at least 2KB (a message's header alone is about 2 KB)", FormatSize(o.Size))
	case o.Large < 0:
		return fmt.Errorf("--large %d: use 0 or more", o.Large)
	case o.LargeSize < 64*KB || o.LargeSize > 1<<30:
		return fmt.Errorf("--large-size %s: use 64KB to 1GB", FormatSize(o.LargeSize))
	case o.Delay < 0 || o.Delay > time.Minute:
		return fmt.Errorf("--delay %s: use 0 to 1m", o.Delay)
	case o.Concurrency < 0 || o.Concurrency > 256:
		return fmt.Errorf("--concurrency %d: use 1 to 256 (or 0 for the fetcher's default)", o.Concurrency)
	case o.Passes < 1 || o.Passes > 100:
		return fmt.Errorf("--passes %d: use 1 to 100", o.Passes)
	case o.Fetchmail && o.Server != ServerDovecot:
		return errors.New("--fetchmail needs --server dovecot: fetchmail is compared on a real server")
	case o.Executable == "":
		return errors.New("no fetcher executable to run")
	}
	if !strings.HasPrefix(o.DatabaseURL, "postgres://") && !strings.HasPrefix(o.DatabaseURL, "postgresql://") {
		return fmt.Errorf("--database-url %q: the bench needs a Postgres server (postgres://…), where it creates a database of its own", store.Redact(o.DatabaseURL))
	}
	return nil
}

// run is one benchmark's state.
type run struct {
	opts   Options
	dir    string
	tokens *oauthtest.Server
	server mailServer
	proxy  *Proxy
	db     *benchDB
	gen    Generator
	users  []string
	// passwords of the users, for fetchmail's password login.
	passwords map[string]string
	// expected maps each delivered Message-ID to its mailbox's index.
	expected map[string]int
	caFile   string
	env      []string
	report   Report
}

// Bench application identity at the token server.
const (
	clientID     = "fetcher-bench"
	clientSecret = "bench-client-secret"
	benchScopes  = "offline_access https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/POP.AccessAsUser.All"
)

// Run performs the benchmark. It returns the report even when the check
// failed (Report.OK says so); an error means it could not measure.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	r := &run{opts: opts, gen: Generator{Seed: opts.Seed, Fixed: opts.Size}, expected: map[string]int{}, passwords: map[string]string{}}
	r.report.Scenario.Load = loadAverage()
	defer r.cleanup()
	if err := r.setUp(ctx); err != nil {
		return nil, err
	}
	for n := 1; n <= opts.Passes; n++ {
		if n > 1 {
			// Past FETCHER_INTERVAL (1s) since the last pass's successes:
			// no mailbox is skipped as fetched recently, should `run
			// --once` ever honour the interval.
			if err := sleep(ctx, 1100*time.Millisecond); err != nil {
				return r.incomplete(context.Cause(ctx))
			}
		}
		r.progress("pass %d: fetcher run --once", n)
		p, err := r.pass(ctx, n)
		if err != nil {
			return r.incomplete(fmt.Errorf("pass %d: %w", n, err))
		}
		r.report.Passes = append(r.report.Passes, p)
	}
	check, err := r.db.check(ctx, r.expected)
	if err != nil {
		return r.incomplete(err)
	}
	r.checkVisits(&check)
	r.report.Check = check
	if opts.Fetchmail {
		r.progress("fetchmail over the same mail")
		f, err := r.fetchmail(ctx)
		if err != nil {
			return r.incomplete(fmt.Errorf("fetchmail: %w", err))
		}
		r.report.Fetchmail = f
	}
	r.keep()
	return &r.report, nil
}

// incomplete returns what was measured before err stopped the run (nil
// when no pass ended), and err.
func (r *run) incomplete(err error) (*Report, error) {
	r.keep()
	if len(r.report.Passes) == 0 {
		return nil, err
	}
	r.report.Incomplete = err.Error()
	return &r.report, err
}

// keep notes what --keep keeps, and saves Dovecot's log with the others.
func (r *run) keep() {
	if r.opts.Keep {
		r.report.KeptDatabase = store.Redact(r.db.url)
		r.report.KeptDir = r.dir
		if log := r.server.logText(); log != "" {
			_ = os.WriteFile(filepath.Join(r.dir, "dovecot.log"), []byte(log), 0o600)
		}
	}
}

// checkVisits notes passes that did not visit every mailbox: their figures
// would not be what they say.
func (r *run) checkVisits(c *Check) {
	for _, p := range r.report.Passes {
		if p.Mailboxes != r.opts.Mailboxes {
			c.OK = false
			c.Problems = append(c.Problems, fmt.Sprintf("pass %d visited %d of %d mailboxes", p.Pass, p.Mailboxes, r.opts.Mailboxes))
		}
	}
}

func (r *run) progress(format string, args ...any) {
	if r.opts.Progress != nil {
		fmt.Fprintf(r.opts.Progress, "bench: "+format+"\n", args...)
	}
}

func (r *run) setUp(ctx context.Context) error {
	var err error
	if r.dir, err = os.MkdirTemp("", "fetcher-bench-"); err != nil {
		return err
	}
	r.tokens = oauthtest.NewServer(oauthtest.Options{})
	r.tokens.AddClient(clientID, clientSecret)
	for i := range r.opts.Mailboxes {
		u := fmt.Sprintf("bench%04d@%s", i+1, Domain)
		r.users = append(r.users, u)
		r.passwords[u] = fmt.Sprintf("bench-password-%d", i+1)
	}
	r.progress("starting the %s %s server", r.opts.Server, r.opts.Protocol)
	if r.server, err = startMailServer(r.opts, r.tokens, r.passwords); err != nil {
		return err
	}
	for _, u := range r.users {
		if err := r.server.addUser(u, r.passwords[u]); err != nil {
			return err
		}
	}
	target, targetTLS := r.server.backend()
	cert := r.server.cert()
	r.proxy, err = StartProxy(ProxyOptions{Target: target, TargetTLS: targetTLS, Delay: r.opts.Delay,
		TLS: &tls.Config{Certificates: []tls.Certificate{cert.TLS}}})
	if err != nil {
		return err
	}
	r.caFile = filepath.Join(r.dir, "ca.pem")
	if err := os.WriteFile(r.caFile, cert.PEM, 0o600); err != nil {
		return err
	}
	if err := r.deliver(ctx); err != nil {
		return err
	}
	if err := r.server.warm(ctx, r.users, r.passwords); err != nil {
		return err
	}
	r.progress("creating a database on %s", store.Redact(r.opts.DatabaseURL))
	key, keyText, err := newKeyring()
	if err != nil {
		return err
	}
	if r.db, err = createDatabase(ctx, r.opts.DatabaseURL, key); err != nil {
		return err
	}
	if err := r.db.addMailboxes(ctx, r.mailboxRows()); err != nil {
		return err
	}
	r.env = r.childEnv(keyText)
	r.report.Scenario = r.scenario(ctx)
	r.report.Check.Delivered = len(r.expected)
	return nil
}

// deliver generates the scenario's messages and puts them on the server.
func (r *run) deliver(ctx context.Context) error {
	total := r.opts.Mailboxes*r.opts.Messages + r.opts.Large
	r.progress("delivering %d messages to %d %s", total, r.opts.Mailboxes, plural(r.opts.Mailboxes, "mailbox", "mailboxes"))
	put := func(mb int, m Message) error {
		if _, dup := r.expected[m.ID]; dup {
			return fmt.Errorf("generated Message-ID %s twice", m.ID)
		}
		r.expected[m.ID] = mb
		r.report.Scenario.DeliveredBytes += int64(len(m.Raw))
		return r.server.deliver(r.users[mb], m.Raw)
	}
	for mb := range r.opts.Mailboxes {
		for i := range r.opts.Messages {
			if i%1000 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			if err := put(mb, r.gen.Message(mb, i)); err != nil {
				return err
			}
		}
	}
	for k := range r.opts.Large {
		mb := k % r.opts.Mailboxes
		if err := put(mb, r.gen.Large(mb, r.opts.Messages+k, r.opts.LargeSize)); err != nil {
			return err
		}
	}
	return nil
}

// mailboxRows are the mailbox rows, as an admin adds a mailbox of a custom
// OAuth provider (docs/custom-provider.md) after signing it in: the token
// endpoint is the in-process one, the refresh token one it issued.
func (r *run) mailboxRows() []store.Mailbox {
	rows := make([]store.Mailbox, len(r.users))
	for i, u := range r.users {
		rows[i] = store.Mailbox{
			Name: fmt.Sprintf("bench %04d", i+1), Protocol: r.opts.Protocol,
			Host: "127.0.0.1", Port: r.proxy.Port(), UseSSL: true, Username: u,
			AuthType: "oauth2", OAuthProvider: "custom", OAuthGrant: "refresh_token",
			TokenURL: r.tokens.TokenURL(""), AuthURL: r.tokens.URL() + "/authorize",
			ClientID: clientID, ClientSecret: clientSecret, Scopes: benchScopes,
			RefreshToken: r.tokens.IssueRefreshToken(clientID, u),
			Enabled:      true,
		}
	}
	return rows
}

// childVars are the settings the bench gives the fetcher; whatever the
// environment says of them is replaced.
var childVars = []string{"DATABASE_URL", "FETCHER_DATABASE_URL", "FETCHER_CA_FILE", "FETCHER_LOG_FORMAT",
	"FETCHER_PROGRESS", "FETCHER_CONCURRENCY", "FETCHER_INTERVAL", "FETCHER_LISTEN", "FETCHER_PROTOCOL_TRACE",
	"FETCHER_SECRET_KEY", "FETCHER_SECRET_KEY_FILE", "FETCHER_SECRET_KEY_OLD", "FETCHER_SECRET_KEY_OLD_FILE",
	"FETCHER_AUTO_MIGRATE"}

func (r *run) childEnv(keyText string) []string {
	var env []string
	for _, kv := range r.opts.Env {
		name, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, v := range childVars {
			drop = drop || name == v
		}
		if !drop {
			env = append(env, kv)
		}
	}
	env = append(env,
		"DATABASE_URL="+r.db.url,
		"FETCHER_CA_FILE="+r.caFile,
		"FETCHER_LOG_FORMAT=json",
		"FETCHER_PROGRESS=never",
		"FETCHER_INTERVAL=1s",
		"FETCHER_SECRET_KEY="+keyText,
	)
	if r.opts.Concurrency > 0 {
		env = append(env, fmt.Sprintf("FETCHER_CONCURRENCY=%d", r.opts.Concurrency))
	}
	return env
}

// newKeyring makes a random secret key: the mailbox rows are stored
// encrypted, as in production.
func newKeyring() (*secret.Keyring, string, error) {
	text, err := secret.GenerateKey()
	if err != nil {
		return nil, "", err
	}
	key, err := secret.ParseKey(text)
	if err != nil {
		return nil, "", err
	}
	ring, err := secret.NewKeyring(key)
	return ring, text, err
}

func (r *run) scenario(ctx context.Context) Scenario {
	s := r.report.Scenario
	s.Server, s.ServerDetail, s.Protocol = r.opts.Server, r.server.describe(), r.opts.Protocol
	if v := dovecotVersion(ctx); r.opts.Server == ServerDovecot && v != "" {
		s.ServerDetail = "dovecot " + v + " (Maildir)"
	}
	s.Mailboxes, s.Messages, s.Seed = r.opts.Mailboxes, r.opts.Messages, r.opts.Seed
	s.Size = SizeRealistic
	if r.opts.Size > 0 {
		s.Size = FormatSize(r.opts.Size)
	}
	s.Large, s.LargeBytes = r.opts.Large, r.opts.LargeSize
	s.Delivered = len(r.expected)
	s.DelayMS = float64(r.opts.Delay) / float64(time.Millisecond)
	s.Concurrency, s.ConcurrencyDefault = r.opts.Concurrency, r.opts.Concurrency == 0
	if s.ConcurrencyDefault {
		s.Concurrency = fetch.DefaultConcurrency
	}
	s.GoVersion, s.Platform, s.CPUs = runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU()
	return s
}

// cleanup stops the servers and, unless kept, drops the database and
// removes the directory.
func (r *run) cleanup() {
	if r.db != nil {
		if err := r.db.close(!r.opts.Keep); err != nil {
			r.progress("could not drop the database: %v", err)
		}
	}
	if r.proxy != nil {
		_ = r.proxy.Close()
	}
	if r.server != nil {
		r.server.close()
	}
	if r.tokens != nil {
		r.tokens.Close()
	}
	if r.dir != "" && !r.opts.Keep {
		_ = os.RemoveAll(r.dir)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
