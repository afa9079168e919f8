package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
)

// measured is what a child process cost.
type measured struct {
	seconds, cpuSeconds float64
	peakRSS             int64 // bytes
	exitCode            int
}

// childSpec is a process to run and measure.
type childSpec struct {
	path           string
	args           []string
	env            []string
	stdout, stderr *os.File
}

// runDirect runs the child as a plain child process: its ru_maxrss then
// includes the bench's own peak (see runMeasured), so this is only the
// fallback.
func runDirect(ctx context.Context, c childSpec) (measured, error) {
	cmd := exec.CommandContext(ctx, c.path, c.args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = c.env, c.stdout, c.stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 45 * time.Second
	start := time.Now()
	err := cmd.Run()
	m := measured{seconds: time.Since(start).Seconds()}
	ps := cmd.ProcessState
	if ps == nil {
		return m, fmt.Errorf("run %s: %w", c.path, err)
	}
	if ctx.Err() != nil {
		return m, fmt.Errorf("%s interrupted: %w", c.path, context.Cause(ctx))
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return m, fmt.Errorf("run %s: %w", c.path, err)
	}
	m.cpuSeconds = (ps.UserTime() + ps.SystemTime()).Seconds()
	m.peakRSS = directRSS(ps)
	m.exitCode = ps.ExitCode()
	return m, nil
}

// pass runs `fetcher run --once` once and measures it.
func (r *run) pass(ctx context.Context, n int) (Pass, error) {
	p := Pass{Pass: n}
	before, err := r.db.counts(ctx)
	if err != nil {
		return p, err
	}
	proxyBefore, tokensBefore := r.proxy.Stats(), r.tokens.Requests()
	p.Load = loadAverage()
	logPath := filepath.Join(r.dir, fmt.Sprintf("pass-%d.log", n))
	logFile, err := os.Create(logPath)
	if err != nil {
		return p, err
	}
	defer func() { _ = logFile.Close() }()
	outPath := filepath.Join(r.dir, fmt.Sprintf("pass-%d.out", n))
	outFile, err := os.Create(outPath)
	if err != nil {
		return p, err
	}
	defer func() { _ = outFile.Close() }()
	m, err := runMeasured(ctx, childSpec{path: r.opts.Executable, args: []string{"run", "--once"},
		env: r.passEnv(n), stdout: outFile, stderr: logFile})
	if err != nil {
		return p, err
	}
	out, _ := os.ReadFile(outPath)
	r.settle()
	after, err := r.db.counts(ctx)
	if err != nil {
		return p, err
	}
	if p.Mailboxes, err = r.db.visited(ctx, before); err != nil {
		return p, err
	}
	traffic := r.proxy.Stats().Sub(proxyBefore)
	p.Stored, p.Bytes = after.messages-before.messages, after.bytes-before.bytes
	p.measure(m, traffic, r.tokens.Requests()-tokensBefore, p.Stored, p.Bytes)
	p.Summary = strings.TrimSpace(string(out))
	p.LogWarnings, p.LogProblems = scanLog(logPath)
	if p.ExitCode != 0 && p.Summary == "" {
		p.Summary = "no summary; see " + logPath
	}
	return p, nil
}

// loadAverage is the 1-minute load average (/proc/loadavg), or 0 where
// there is none.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), " ")
	l, _ := strconv.ParseFloat(first, 64)
	return l
}

// settle lets the proxy's connections end, so that the commands still on
// their way through the delay when the client exited are counted.
func (r *run) settle() {
	if !r.proxy.Settle(r.opts.Delay + 5*time.Second) {
		r.progress("connections through the proxy still open %s after the client exited", r.opts.Delay+5*time.Second)
	}
}

// cpuProfileEnv is the fetcher's setting for a CPU profile of its run.
const cpuProfileEnv = "FETCHER_CPU_PROFILE"

// passEnv is the fetcher's environment for pass n: a CPU profile asked for
// in the bench's environment is written per pass (cpu.pprof becomes
// cpu.pass1.pprof, cpu.pass2.pprof …), not overwritten by the next pass.
func (r *run) passEnv(n int) []string {
	path := ""
	for _, kv := range r.env {
		if v, ok := strings.CutPrefix(kv, cpuProfileEnv+"="); ok {
			path = v
		}
	}
	if path == "" {
		return r.env
	}
	ext := filepath.Ext(path)
	return append(slices.Clone(r.env), fmt.Sprintf("%s=%s.pass%d%s", cpuProfileEnv, strings.TrimSuffix(path, ext), n, ext))
}

// scanLog counts the WARN and ERROR lines of a JSON log and quotes the
// first three.
func scanLog(path string) (int, []string) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil
	}
	defer func() { _ = f.Close() }()
	n := 0
	var first []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var line struct {
			Level, Msg, Error string
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			// Not JSON: a panic or the Go runtime; count it.
			line.Level, line.Msg = "ERROR", sc.Text()
		}
		if line.Level != "WARN" && line.Level != "ERROR" {
			continue
		}
		n++
		if len(first) < 3 {
			q := line.Msg
			if line.Error != "" {
				q += ": " + line.Error
			}
			first = append(first, q)
		}
	}
	return n, first
}

// dovecotVersion is what `dovecot --version` says, or "".
func dovecotVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, mailboxtest.DovecotBinary, "--version").Output()
	if err != nil {
		return ""
	}
	v, _, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	return v
}
