package main

import (
	"flag"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/ticket"
)

// runConfig loads the settings of `run` from env and args, as Main does.
func runConfig(env map[string]string, args ...string) (Config, error) {
	m := &Main{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(k string) string { return env[k] }}
	return m.config("run", args, func(fs *flag.FlagSet, c *Config) { c.registerRunFlags(fs) })
}

func TestLimitSettings(t *testing.T) {
	t.Parallel()
	allEnv := map[string]string{
		"FETCHER_MAX_HEADER_BYTES": "131072", "FETCHER_MAX_HEADER_FIELDS": "300",
		"FETCHER_MAX_MIME_DEPTH": "9", "FETCHER_MAX_MIME_PARTS": "200",
		"FETCHER_MAX_ATTACHMENTS": "50", "FETCHER_MAX_DECODED_BYTES": "20971520",
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want ticket.Limits
	}{
		{"defaults", nil, nil, ticket.DefaultLimits()},
		{"environment", allEnv, nil, ticket.Limits{
			HeaderBytes: 128 << 10, HeaderFields: 300, MIMEDepth: 9, MIMEParts: 200, Attachments: 50, DecodedBytes: 20 << 20,
		}},
		{"flags over environment", allEnv, []string{
			"--max-header-bytes", "65536", "--max-header-fields", "200", "--max-mime-depth", "20",
			"--max-mime-parts", "10000", "--max-attachments", "20", "--max-decoded-bytes", "10485760",
		}, ticket.Limits{
			HeaderBytes: 64 << 10, HeaderFields: 200, MIMEDepth: 20, MIMEParts: 10000, Attachments: 20, DecodedBytes: 10 << 20,
		}},
		{"one setting keeps the other defaults", map[string]string{"FETCHER_MAX_ATTACHMENTS": "1000"}, nil, ticket.Limits{
			HeaderBytes: ticket.DefaultHeaderBytes, HeaderFields: ticket.DefaultHeaderFields, MIMEDepth: ticket.DefaultMIMEDepth,
			MIMEParts: ticket.DefaultMIMEParts, Attachments: 1000, DecodedBytes: ticket.DefaultDecodedBytes,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := runConfig(tt.env, tt.args...)
			require.NoError(t, err)
			require.Equal(t, tt.want, cfg.Limits)
			runner, err := newRunner(cfg, nil, slog.New(slog.DiscardHandler), io.Discard)
			require.NoError(t, err)
			require.Equal(t, tt.want, runner.Limits, "the runner parses with the settings")
		})
	}
}

// TestLimitSettingsValidated: a value that is not a number, below what
// ordinary mail needs, or (MIME depth and parts) past what keeps parsing
// bounded is refused with the setting's names.
func TestLimitSettingsValidated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		env       map[string]string
		args      []string
		wantInErr []string
	}{
		{"header bytes not a number", map[string]string{"FETCHER_MAX_HEADER_BYTES": "1MB"}, nil,
			[]string{`FETCHER_MAX_HEADER_BYTES="1MB": want a number of bytes`}},
		{"header fields not a number", map[string]string{"FETCHER_MAX_HEADER_FIELDS": "many"}, nil,
			[]string{`FETCHER_MAX_HEADER_FIELDS="many"`}},
		{"header bytes too small", map[string]string{"FETCHER_MAX_HEADER_BYTES": "65535"}, nil,
			[]string{"max header bytes 65535 is too small", "at least 65536", "FETCHER_MAX_HEADER_BYTES / --max-header-bytes"}},
		{"header fields too small", nil, []string{"--max-header-fields", "199"},
			[]string{"at least 200", "FETCHER_MAX_HEADER_FIELDS / --max-header-fields"}},
		{"MIME depth too small", map[string]string{"FETCHER_MAX_MIME_DEPTH": "7"}, nil,
			[]string{"at least 8", "FETCHER_MAX_MIME_DEPTH / --max-mime-depth"}},
		{"MIME depth too large", map[string]string{"FETCHER_MAX_MIME_DEPTH": "21"}, nil,
			[]string{"max MIME depth 21 is too large", "at most 20", "FETCHER_MAX_MIME_DEPTH / --max-mime-depth"}},
		{"MIME parts too small", nil, []string{"--max-mime-parts", "99"},
			[]string{"at least 100", "FETCHER_MAX_MIME_PARTS / --max-mime-parts"}},
		{"MIME parts too large", nil, []string{"--max-mime-parts", "10001"},
			[]string{"at most 10000", "FETCHER_MAX_MIME_PARTS / --max-mime-parts"}},
		{"attachments too small", map[string]string{"FETCHER_MAX_ATTACHMENTS": "0"}, nil,
			[]string{"at least 20", "FETCHER_MAX_ATTACHMENTS / --max-attachments"}},
		{"decoded bytes too small", nil, []string{"--max-decoded-bytes", "1048576"},
			[]string{"at least 10485760", "FETCHER_MAX_DECODED_BYTES / --max-decoded-bytes"}},
		{"decoded bytes negative", map[string]string{"FETCHER_MAX_DECODED_BYTES": "-1"}, nil,
			[]string{"FETCHER_MAX_DECODED_BYTES / --max-decoded-bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := runConfig(tt.env, tt.args...)
			var ue *usageError
			require.ErrorAs(t, err, &ue, "a bad setting is a usage error (exit status 2)")
			for _, want := range tt.wantInErr {
				require.ErrorContains(t, err, want)
			}
		})
	}
}

// TestServiceSettings: --listen and --ready-max-age mirror FETCHER_LISTEN
// and FETCHER_READY_MAX_AGE, and a bad value is refused naming them.
func TestServiceSettings(t *testing.T) {
	t.Parallel()
	good := []struct {
		name        string
		env         map[string]string
		args        []string
		listen      string
		readyMaxAge time.Duration
	}{
		{"defaults: no endpoints, 3 × the interval", nil, nil, "", 30 * time.Minute},
		{"environment", map[string]string{"FETCHER_LISTEN": ":9090", "FETCHER_READY_MAX_AGE": "1h"}, nil, ":9090", time.Hour},
		{"flags over environment", map[string]string{"FETCHER_LISTEN": ":9090"}, []string{"--listen", "127.0.0.1:9100", "--ready-max-age", "45m"}, "127.0.0.1:9100", 45 * time.Minute},
		{"the default follows the interval", nil, []string{"--interval", "2m", "--listen", "[::1]:0"}, "[::1]:0", 6 * time.Minute},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := runConfig(tt.env, tt.args...)
			require.NoError(t, err)
			require.Equal(t, tt.listen, cfg.Listen)
			require.Equal(t, tt.readyMaxAge, cfg.readyMaxAge())
		})
	}
	bad := []struct {
		name      string
		env       map[string]string
		args      []string
		wantInErr string
	}{
		{"port only", map[string]string{"FETCHER_LISTEN": "9090"}, nil, `listen address "9090": want host:port`},
		{"port not a number", nil, []string{"--listen", "localhost:metrics"}, "FETCHER_LISTEN / --listen"},
		{"port out of range", nil, []string{"--listen", ":70000"}, "FETCHER_LISTEN / --listen"},
		{"max age not a duration", map[string]string{"FETCHER_READY_MAX_AGE": "3 intervals"}, nil, `FETCHER_READY_MAX_AGE="3 intervals"`},
		{"max age shorter than the interval", nil, []string{"--ready-max-age", "5m"}, "FETCHER_READY_MAX_AGE / --ready-max-age"},
		{"max age negative", map[string]string{"FETCHER_READY_MAX_AGE": "-1h"}, nil, "FETCHER_READY_MAX_AGE / --ready-max-age"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := runConfig(tt.env, tt.args...)
			var ue *usageError
			require.ErrorAs(t, err, &ue, "a bad setting is a usage error (exit status 2)")
			require.ErrorContains(t, err, tt.wantInErr)
		})
	}
}

// TestProgressSetting: --progress mirrors FETCHER_PROGRESS, and a value
// other than auto, always or never is refused naming both.
func TestProgressSetting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		env       map[string]string
		args      []string
		want      string
		wantInErr string
	}{
		{"default", nil, nil, progressAuto, ""},
		{"environment", map[string]string{"FETCHER_PROGRESS": "never"}, nil, progressNever, ""},
		{"flag over environment", map[string]string{"FETCHER_PROGRESS": "never"}, []string{"--progress", "always"}, progressAlways, ""},
		{"unknown in the environment", map[string]string{"FETCHER_PROGRESS": "yes"}, nil, "", `progress "yes": use auto, always or never (FETCHER_PROGRESS / --progress)`},
		{"unknown flag value", nil, []string{"--progress", "off"}, "", "FETCHER_PROGRESS / --progress"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := runConfig(tt.env, tt.args...)
			if tt.wantInErr != "" {
				var ue *usageError
				require.ErrorAs(t, err, &ue, "a bad setting is a usage error (exit status 2)")
				require.ErrorContains(t, err, tt.wantInErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, cfg.Progress)
		})
	}
}
