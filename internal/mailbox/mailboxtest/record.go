package mailboxtest

import (
	"bytes"
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// recorder keeps every byte the server's connections read off the network,
// below TLS: what crossed the wire, for tests that assert no credential
// was ever sent in clear.
type recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) write(p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf.Write(p)
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

type recordingListener struct {
	net.Listener
	rec *recorder
}

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c, rec: l.rec}, nil
}

type recordingConn struct {
	net.Conn
	rec *recorder
}

// writeTimeout bounds each write to a client, as real servers' output
// timeouts do (Dovecot's is a few minutes): a session writing to a client
// that no longer reads ends instead of holding its mailbox's lock, which
// the in-process server keeps for the whole of a FETCH response.
const writeTimeout = 10 * time.Second

func (c *recordingConn) Write(p []byte) (int, error) {
	_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.Conn.Write(p)
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.rec.write(p[:n])
	return n, err
}

// listen listens on 127.0.0.1 on a free port, recording what comes in,
// with TLS from the first byte for security "tls" (or "").
func listen(security string, cfg *tls.Config, rec *recorder) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ln = recordingListener{Listener: ln, rec: rec}
	if security == "" || security == "tls" {
		return tls.NewListener(ln, cfg), nil
	}
	return ln, nil
}

// serverTLS is the servers' TLS configuration. maxVersion, when set, makes
// a legacy server: it speaks TLS 1.0 up to maxVersion only.
func serverTLS(cert *Cert, maxVersion uint16) *tls.Config {
	cfg := &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	if maxVersion != 0 {
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, maxVersion
	}
	return cfg
}
