package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/logtest"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// TestEmbeddedDatabaseAllowsOneWorker: a second worker on the same SQLite
// file is refused with words that say why and what to do, and the first
// worker's lock goes with it when it stops.
func TestEmbeddedDatabaseAllowsOneWorker(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	env, _, _ := servers(t, db)
	ctx, cancel := context.WithCancel(context.Background())
	var errOut logtest.Buffer
	first := &Main{Stdout: &logtest.Buffer{}, Stderr: &errOut, Getenv: func(k string) string { return env[k] }}
	done := make(chan int, 1)
	go func() { done <- first.Run(ctx, []string{"run"}) }()
	require.Eventually(t, func() bool { return strings.Contains(errOut.String(), "fetcher started") },
		10*time.Second, 20*time.Millisecond)

	r := runMain(t, context.Background(), env, "run", "--once")
	require.Equal(t, exitFailed, r.code)
	require.Contains(t, r.stderr, "another fetcher is already running on this embedded database")
	require.Contains(t, r.stderr, "use Postgres")

	cancel()
	require.Equal(t, exitOK, <-done, errOut.String())
	r = runMain(t, context.Background(), env, "run", "--once")
	require.Equal(t, exitOK, r.code, r.stderr)
}
