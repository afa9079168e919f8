//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER of prctl(2).
const prSetChildSubreaper = 36

var (
	subreaperOnce sync.Once
	subreaperErr  error
)

// runMeasured runs the child and reads its rusage when it ends.
//
// Go starts processes with vfork, and Linux gives a vforked child's
// ru_maxrss the peak RSS of the parent's memory at exec: the fetcher would
// be charged with the bench's own memory (the in-process mail server holds
// every message). So the child is started by /bin/sh in the background
// (a real fork from a small shell, whose memory is all it inherits) and
// the shell exits at once; the bench is the child subreaper, so the
// orphaned child becomes its child, and wait4 reads the child's own
// rusage.
func runMeasured(ctx context.Context, c childSpec) (measured, error) {
	subreaperOnce.Do(func() {
		if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
			subreaperErr = errno
		}
	})
	if subreaperErr != nil {
		return runDirect(ctx, c)
	}
	sh := exec.Command("/bin/sh", "-c", `"$@" </dev/null >&3 2>&4 3>&- 4>&- & echo $!`, "sh", c.path)
	sh.Args = append(sh.Args, c.args...)
	sh.Env = c.env
	sh.ExtraFiles = []*os.File{c.stdout, c.stderr}
	start := time.Now()
	out, err := sh.Output()
	if err != nil {
		return measured{}, fmt.Errorf("start %s: %w", c.path, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return measured{}, fmt.Errorf("start %s: the shell said %q", c.path, out)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
			// The fetcher's graceful stop, then, if it lingers, the end.
			_ = syscall.Kill(pid, syscall.SIGTERM)
			select {
			case <-time.After(45 * time.Second):
				_ = syscall.Kill(pid, syscall.SIGKILL)
			case <-stop:
			}
		case <-stop:
		}
	}()
	var ws syscall.WaitStatus
	var ru syscall.Rusage
	for {
		_, err = syscall.Wait4(pid, &ws, 0, &ru)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	m := measured{seconds: time.Since(start).Seconds()}
	if err != nil {
		return m, fmt.Errorf("wait for %s: %w", c.path, err)
	}
	if ctx.Err() != nil {
		return m, fmt.Errorf("%s interrupted: %w", c.path, context.Cause(ctx))
	}
	m.cpuSeconds = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	m.peakRSS = ru.Maxrss * 1024 // KiB on Linux
	m.exitCode = ws.ExitStatus()
	if ws.Signaled() {
		m.exitCode = 128 + int(ws.Signal())
	}
	return m, nil
}

// directRSS is ru_maxrss of a process started by os/exec (a vfork: at
// least the bench's own peak).
func directRSS(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok && ru != nil {
		return ru.Maxrss * 1024
	}
	return 0
}
