package oauth

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"sync"
)

// Headers Microsoft's identity platform reads and echoes. A client-request-id
// per call lets the provider's support find the request in their logs.
const (
	headerClientRequestID       = "client-request-id"
	headerReturnClientRequestID = "return-client-request-id"
)

// requestIDTransport adds a fresh client-request-id to every request and
// remembers the last one, so errors and logs can name it.
type requestIDTransport struct {
	base http.RoundTripper

	mu   sync.Mutex
	last string
}

// RoundTrip implements [http.RoundTripper]. It clones req, which a
// RoundTripper must not modify.
func (t *requestIDTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	id := newRequestID()
	t.mu.Lock()
	t.last = id
	t.mu.Unlock()
	req = req.Clone(req.Context())
	req.Header.Set(headerClientRequestID, id)
	req.Header.Set(headerReturnClientRequestID, "true")
	return t.base.RoundTrip(req)
}

// lastID returns the client-request-id of the latest request, or "".
func (t *requestIDTransport) lastID() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// newRequestID returns a random UUID version 4 (RFC 9562 section 5.4).
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
