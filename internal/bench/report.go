package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Report is what a benchmark measured.
type Report struct {
	Scenario  Scenario   `json:"scenario"`
	Passes    []Pass     `json:"passes"`
	Check     Check      `json:"check"`
	Fetchmail *Fetchmail `json:"fetchmail,omitempty"`
	// Kept names what --keep kept: the database URL and the directory of
	// the logs.
	KeptDatabase string `json:"kept_database,omitempty"`
	KeptDir      string `json:"kept_dir,omitempty"`
	// Incomplete says what stopped the run before it ended (a timeout,
	// a signal), when it did: the figures are those measured until then.
	Incomplete string `json:"incomplete,omitempty"`
}

// Scenario is what was measured.
type Scenario struct {
	Server       string `json:"server"`
	ServerDetail string `json:"server_detail"`
	Protocol     string `json:"protocol"`
	Mailboxes    int    `json:"mailboxes"`
	Messages     int    `json:"messages_per_mailbox"`
	// Size is "realistic" or a fixed size such as "20KB".
	Size           string  `json:"size"`
	Seed           uint64  `json:"seed"`
	Large          int     `json:"large_messages"`
	LargeBytes     int64   `json:"large_message_bytes"`
	Delivered      int     `json:"delivered_messages"`
	DeliveredBytes int64   `json:"delivered_bytes"`
	DelayMS        float64 `json:"delay_ms"`
	Concurrency    int     `json:"concurrency"`
	// ConcurrencyDefault: FETCHER_CONCURRENCY was not set, the fetcher
	// used its default.
	ConcurrencyDefault bool   `json:"concurrency_default"`
	GoVersion          string `json:"go_version"`
	Platform           string `json:"platform"`
	CPUs               int    `json:"cpus"`
	// Load is the 1-minute load average before the bench began (Linux):
	// the other work on the machine.
	Load float64 `json:"load_average_at_start"`
}

// Pass is one `fetcher run --once`.
type Pass struct {
	Pass int `json:"pass"`
	// Mailboxes counts the fetch_runs rows the pass wrote: the mailboxes
	// it visited.
	Mailboxes int   `json:"mailboxes_visited"`
	Stored    int   `json:"messages_stored"`
	Bytes     int64 `json:"bytes_stored"`
	Measured
	// Summary is the fetcher's own summary line (its stdout).
	Summary string `json:"summary"`
	// LogWarnings counts the WARN and ERROR lines of the pass's log;
	// LogProblems quotes the first few.
	LogWarnings int      `json:"log_warnings"`
	LogProblems []string `json:"log_problems,omitempty"`
}

// Measured is what the bench measures of one process it runs (a fetcher
// pass, or fetchmail); embedded, so its fields stay at the top level of
// the JSON.
type Measured struct {
	Seconds           float64 `json:"seconds"`
	CPUSeconds        float64 `json:"cpu_seconds"`
	MessagesPerSecond float64 `json:"messages_per_second"`
	MBPerSecond       float64 `json:"mb_per_second"`
	PeakRSSMB         float64 `json:"peak_rss_mb"`
	Commands          int64   `json:"commands"`
	Logins            int64   `json:"logins"`
	TokenRequests     int     `json:"token_requests"`
	ExitCode          int     `json:"exit_code"`
	// Load is the machine's 1-minute load average as the process started
	// (Linux), the bench's own earlier passes included.
	Load float64 `json:"load_average"`
}

// measure fills what m, the proxy's traffic and the token requests say of a
// process that handled messages messages of size bytes.
func (x *Measured) measure(m measured, traffic ProxyStats, tokens, messages int, size int64) {
	x.Seconds, x.CPUSeconds, x.PeakRSSMB, x.ExitCode = m.seconds, m.cpuSeconds, mb(m.peakRSS), m.exitCode
	x.Commands, x.Logins, x.TokenRequests = traffic.Lines, traffic.Conns, tokens
	if m.seconds > 0 {
		x.MessagesPerSecond, x.MBPerSecond = float64(messages)/m.seconds, mb(size)/m.seconds
	}
}

// Check compares what was stored with what was delivered.
type Check struct {
	Delivered int `json:"delivered"`
	Stored    int `json:"stored"`
	// Missing were delivered but never stored; Doubled were stored more
	// than once (counting the extra rows); Unexpected are rows of no
	// delivered message.
	Missing    int      `json:"missing"`
	Doubled    int      `json:"doubled"`
	Unexpected int      `json:"unexpected"`
	OK         bool     `json:"ok"`
	Problems   []string `json:"problems,omitempty"`
}

// Fetchmail is the fetchmail comparison run.
type Fetchmail struct {
	Version string `json:"version"`
	// Login is "xoauth2" or "password"; LoginNote says why.
	Login     string `json:"login"`
	LoginNote string `json:"login_note"`
	// Delivered counts the messages in its BSMTP file (MAIL FROM lines).
	Delivered int   `json:"delivered"`
	Bytes     int64 `json:"bytes"`
	Measured
	// Ratio is fetchmail's seconds over the fetcher's first pass's.
	Ratio float64 `json:"seconds_ratio"`
}

// OK reports whether the benchmark passed: every message stored exactly
// once and every pass's fetcher exited 0.
func (r *Report) OK() bool {
	if !r.Check.OK || r.Incomplete != "" {
		return false
	}
	for _, p := range r.Passes {
		if p.ExitCode != 0 {
			return false
		}
	}
	return true
}

// WriteJSON writes the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Line is the scenario on one line.
func (s Scenario) Line() string {
	size := s.Size + " sizes"
	if s.Size == SizeRealistic {
		size = fmt.Sprintf("realistic sizes, seed %d", s.Seed)
	}
	mail := fmt.Sprintf("%d %s × %d messages (%s)", s.Mailboxes, plural(s.Mailboxes, "mailbox", "mailboxes"), s.Messages, size)
	if s.Large > 0 {
		mail += fmt.Sprintf(" + %d × %s", s.Large, FormatSize(s.LargeBytes))
	}
	conc := strconv.Itoa(s.Concurrency)
	if s.ConcurrencyDefault {
		conc += " (fetcher default)"
	}
	return fmt.Sprintf("server %s, protocol %s, %s = %d messages, %.1f MB; delay %s; concurrency %s; %s %s, %d CPUs, load %.2f",
		s.ServerDetail, s.Protocol, mail, s.Delivered, mb(s.DeliveredBytes), formatDelay(s.DelayMS), conc, s.GoVersion, s.Platform, s.CPUs, s.Load)
}

// WriteTable writes the scenario, a table of the passes (and fetchmail),
// and the verdict.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "scenario: %s\n\n", r.Scenario.Line())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "pass\tmailboxes\tstored\tMB\tseconds\tCPU s\tmsg/s\tMB/s\tpeak RSS MB\tcommands\tlogins\ttoken requests\texit\tload")
	for _, p := range r.Passes {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.1f\t%.2f\t%.2f\t%.1f\t%.2f\t%.1f\t%d\t%d\t%d\t%d\t%.2f\n",
			p.Pass, p.Mailboxes, p.Stored, mb(p.Bytes), p.Seconds, p.CPUSeconds, p.MessagesPerSecond, p.MBPerSecond,
			p.PeakRSSMB, p.Commands, p.Logins, p.TokenRequests, p.ExitCode, p.Load)
	}
	if f := r.Fetchmail; f != nil {
		fmt.Fprintf(tw, "fetchmail\t%d\t%d\t%.1f\t%.2f\t%.2f\t%.1f\t%.2f\t%.1f\t%d\t%d\t%d\t%d\t%.2f\n",
			r.Scenario.Mailboxes, f.Delivered, mb(f.Bytes), f.Seconds, f.CPUSeconds, f.MessagesPerSecond, f.MBPerSecond,
			f.PeakRSSMB, f.Commands, f.Logins, f.TokenRequests, f.ExitCode, f.Load)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if l := r.Scenario.Load; l > float64(r.Scenario.CPUs)/2 {
		fmt.Fprintf(w, "note: the machine was busy before the bench began (load average %.1f on %d CPUs): other work shared the CPUs, so the figures may be slower than the fetcher is\n", l, r.Scenario.CPUs)
	}
	for _, p := range r.Passes {
		if p.LogWarnings > 0 {
			fmt.Fprintf(w, "pass %d log: %d warnings or errors, first: %s\n", p.Pass, p.LogWarnings, strings.Join(p.LogProblems, " | "))
		}
	}
	if f := r.Fetchmail; f != nil {
		fmt.Fprintf(w, "fetchmail/fetcher: %.2f (fetchmail %.2f s, fetcher pass 1 %.2f s); %s logged in with %s: %s\n",
			f.Ratio, f.Seconds, r.firstSeconds(), f.Version, f.Login, f.LoginNote)
		if f.Delivered != r.Check.Delivered {
			fmt.Fprintf(w, "fetchmail delivered %d of %d messages\n", f.Delivered, r.Check.Delivered)
		}
	}
	if r.KeptDatabase != "" {
		fmt.Fprintf(w, "kept: database %s, logs in %s\n", r.KeptDatabase, r.KeptDir)
	}
	_, err := fmt.Fprintln(w, r.Verdict())
	return err
}

// Verdict is the final line.
func (r *Report) Verdict() string {
	c := r.Check
	stored := fmt.Sprintf("%d of %d delivered messages stored exactly once (%d missing, %d doubled, %d unexpected)",
		c.Delivered-c.Missing, c.Delivered, c.Missing, c.Doubled, c.Unexpected)
	if r.Incomplete != "" {
		return "result: INCOMPLETE: " + r.Incomplete
	}
	var bad []string
	for _, p := range r.Passes {
		if p.ExitCode != 0 {
			bad = append(bad, fmt.Sprintf("pass %d exited %d (%s)", p.Pass, p.ExitCode, p.Summary))
		}
	}
	bad = append(bad, c.Problems...)
	if r.OK() {
		return "result: OK: " + stored
	}
	return "result: FAILED: " + stored + "; " + strings.Join(bad, "; ")
}

func (r *Report) firstSeconds() float64 {
	if len(r.Passes) == 0 {
		return 0
	}
	return r.Passes[0].Seconds
}

func mb(n int64) float64 { return float64(n) / MB }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func formatDelay(ms float64) string {
	if ms == 0 {
		return "none"
	}
	return strconv.FormatFloat(ms, 'f', -1, 64) + "ms per round trip"
}
