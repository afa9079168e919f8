package bench

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// lookup is the value a child sees: the last one of name in env.
func lookup(env []string, name string) (string, bool) {
	v, ok := "", false
	for _, kv := range env {
		if rest, found := strings.CutPrefix(kv, name+"="); found {
			v, ok = rest, true
		}
	}
	return v, ok
}

func TestChildEnv(t *testing.T) {
	t.Parallel()
	r := &run{opts: Options{Env: []string{"PATH=/usr/bin", "FETCHER_DATABASE_URL=postgres://prod/db", "DATABASE_URL=postgres://prod/db",
		"FETCHER_CONCURRENCY=64", "FETCHER_LOG_LEVEL=debug", "FETCHER_SECRET_KEY_FILE=/etc/key", "FETCHER_CPU_PROFILE=/tmp/cpu.pprof"}},
		db: &benchDB{url: "postgres://bench/fetcher_bench_1"}, caFile: "/tmp/ca.pem"}
	env := r.childEnv("KEY")
	for name, want := range map[string]string{"DATABASE_URL": "postgres://bench/fetcher_bench_1", "FETCHER_CA_FILE": "/tmp/ca.pem",
		"FETCHER_LOG_FORMAT": "json", "FETCHER_SECRET_KEY": "KEY", "FETCHER_LOG_LEVEL": "debug", "PATH": "/usr/bin", "FETCHER_INTERVAL": "1s"} {
		got, ok := lookup(env, name)
		require.True(t, ok, name)
		require.Equal(t, want, got, name)
	}
	for _, name := range []string{"FETCHER_DATABASE_URL", "FETCHER_CONCURRENCY", "FETCHER_SECRET_KEY_FILE"} {
		_, ok := lookup(env, name)
		require.False(t, ok, "%s must not reach the fetcher", name)
	}
	r.opts.Concurrency = 8
	got, _ := lookup(r.childEnv("KEY"), "FETCHER_CONCURRENCY")
	require.Equal(t, "8", got)

	r.env = env
	p1, _ := lookup(r.passEnv(1), cpuProfileEnv)
	p2, _ := lookup(r.passEnv(2), cpuProfileEnv)
	require.Equal(t, "/tmp/cpu.pass1.pprof", p1)
	require.Equal(t, "/tmp/cpu.pass2.pprof", p2)
	r.env = slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, cpuProfileEnv+"=") })
	_, ok := lookup(r.passEnv(1), cpuProfileEnv)
	require.False(t, ok)
}
