package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("log level %q: use debug, info, warn or error (FETCHER_LOG_LEVEL / --log-level)", s)
	}
	return l, nil
}

// newLogger writes text to a terminal and JSON to anything else (a pipe,
// a service manager, a log collector), unless told otherwise.
func newLogger(w io.Writer, format, level string) *slog.Logger {
	return newLoggerOn(w, isTerminal(w), format, level)
}

// newLoggerOn is newLogger for a writer that stands in front of the real
// output, such as the progress display: terminal says what that output
// is, which the writer itself cannot show.
func newLoggerOn(w io.Writer, terminal bool, format, level string) *slog.Logger {
	l, _ := parseLevel(level)
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" || (format == "auto" && !terminal) {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0 && !strings.EqualFold(os.Getenv("TERM"), "dumb")
}
