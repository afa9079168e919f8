package bench

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
)

// echoServer answers every byte with itself until the client hangs up.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func startProxy(t *testing.T, opts ProxyOptions) *Proxy {
	t.Helper()
	p, err := StartProxy(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// roundTrip sends a command line and waits for its echo.
func roundTrip(t *testing.T, c net.Conn, line string) time.Duration {
	t.Helper()
	start := time.Now()
	_, err := c.Write([]byte(line))
	require.NoError(t, err)
	buf := make([]byte, len(line))
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, line, string(buf))
	return time.Since(start)
}

func medianRoundTrip(t *testing.T, addr string) time.Duration {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	var rtts []time.Duration
	for range 7 {
		rtts = append(rtts, roundTrip(t, c, "A1 NOOP\r\n"))
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2]
}

func TestProxyDelaysRoundTrips(t *testing.T) {
	t.Parallel()
	echo := echoServer(t)
	base := medianRoundTrip(t, startProxy(t, ProxyOptions{Target: echo}).Addr())
	const delay = 100 * time.Millisecond
	got := medianRoundTrip(t, startProxy(t, ProxyOptions{Target: echo, Delay: delay}).Addr())
	require.GreaterOrEqual(t, got, delay, "a round trip through a proxy adding %s", delay)
	require.Less(t, got, delay+base+40*time.Millisecond, "a round trip through a proxy adding %s (%s without)", delay, base)
}

func TestProxyForwardsBytesUnchangedAndCountsLines(t *testing.T) {
	t.Parallel()
	echo := echoServer(t)
	for _, delay := range []time.Duration{0, 10 * time.Millisecond} {
		p := startProxy(t, ProxyOptions{Target: echo, Delay: delay})
		data := make([]byte, 2<<20)
		_, _ = rand.Read(data)
		// Command lines, then binary data (where CRLF occur by chance).
		data = append([]byte("A1 LOGIN x y\r\nA2 SELECT INBOX\r\n\r"), data...)
		data = append(data, "\nA3 LOGOUT\r\n"...)
		c, err := net.Dial("tcp", p.Addr())
		require.NoError(t, err)
		go func() {
			// Small writes, so CRLFs are split across reads too.
			for rest := data; len(rest) > 0; {
				n := min(len(rest), 1000+len(rest)%7)
				_, _ = c.Write(rest[:n])
				rest = rest[n:]
			}
		}()
		got := make([]byte, len(data))
		_, err = io.ReadFull(c, got)
		require.NoError(t, err)
		require.True(t, bytes.Equal(data, got), "delay %s: the bytes came back changed", delay)
		require.NoError(t, c.Close())
		require.Eventually(t, func() bool { return p.Stats().Up == int64(len(data)) }, 5*time.Second, 10*time.Millisecond)
		st := p.Stats()
		require.Equal(t, int64(bytes.Count(data, []byte("\r\n"))), st.Lines, "delay %s: lines counted", delay)
		require.Equal(t, int64(1), st.Conns)
		require.Equal(t, int64(len(data)), st.Down)
	}
}

// TestProxyDoesNotThrottle: the delay is latency, not bandwidth. 10 MB
// sent through arrive in about one delay more than without it, far sooner
// than if each chunk waited its turn (10 MB / 32 KB × 25 ms each way = 8 s).
func TestProxyDoesNotThrottle(t *testing.T) {
	t.Parallel()
	const delay, size = 50 * time.Millisecond, 10 << 20
	// The server reads size bytes, then answers "done".
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := io.CopyN(io.Discard, c, size); err == nil {
			_, _ = c.Write([]byte("done\r\n"))
		}
	}()
	p := startProxy(t, ProxyOptions{Target: ln.Addr().String(), Delay: delay})
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	start := time.Now()
	go func() { _, _ = c.Write(data) }()
	got := make([]byte, 6)
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	took := time.Since(start)
	serialised := time.Duration(size/chunkSize) * delay / 2
	t.Logf("10 MB through a %s proxy: %s (serialised chunks would take %s)", delay, took, serialised)
	require.Equal(t, "done\r\n", string(got))
	require.GreaterOrEqual(t, took, delay)
	require.Less(t, took, serialised/3)
	require.NoError(t, c.Close())
	require.True(t, p.Settle(2*time.Second))
	require.Equal(t, int64(size), p.Stats().Up)
}

// TestProxyTerminatesTLS: clients speak TLS to the proxy, which counts
// their command lines in clear; the handshake pays the delay too.
func TestProxyTerminatesTLS(t *testing.T) {
	t.Parallel()
	cert, err := mailboxtest.NewCert()
	require.NoError(t, err)
	const delay = 60 * time.Millisecond
	p := startProxy(t, ProxyOptions{Target: echoServer(t), Delay: delay,
		TLS: &tls.Config{Certificates: []tls.Certificate{cert.TLS}}})
	start := time.Now()
	c, err := tls.Dial("tcp", p.Addr(), &tls.Config{RootCAs: cert.Pool, ServerName: "127.0.0.1"})
	require.NoError(t, err)
	defer c.Close()
	require.GreaterOrEqual(t, time.Since(start), delay, "the TLS handshake takes a round trip")
	require.GreaterOrEqual(t, roundTrip(t, c, "A1 CAPABILITY\r\n"), delay)
	roundTrip(t, c, "A2 NOOP\r\n")
	require.Equal(t, int64(2), p.Stats().Lines)
}

// TestProxySettle: a client that sends its last command and hangs up at
// once still has it counted, once the proxy has settled.
func TestProxySettle(t *testing.T) {
	t.Parallel()
	p := startProxy(t, ProxyOptions{Target: echoServer(t), Delay: 100 * time.Millisecond})
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	roundTrip(t, c, "A1 NOOP\r\n")
	_, err = c.Write([]byte("A2 LOGOUT\r\n"))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	require.Equal(t, int64(1), p.Stats().Lines, "the LOGOUT is still on its way")
	require.True(t, p.Settle(2*time.Second))
	require.Equal(t, int64(2), p.Stats().Lines)
}
