package authorize

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fetcherhq/fetcher/internal/oauth"
)

// Limits of the loopback listener.
const (
	readHeaderTimeout = 10 * time.Second
	shutdownTimeout   = 5 * time.Second
	// maxRefusalWarnings bounds the warnings logged for refused requests,
	// so that a program flooding the port cannot flood the log; all are
	// counted, and the count is reported when the flow ends.
	maxRefusalWarnings = 10
)

// IsLoopback reports whether u is a loopback redirect (RFC 8252 section 7.3)
// that fetcher answers itself: http on 127.0.0.1, [::1] or localhost.
func IsLoopback(u *url.URL) bool {
	_, _, ok := loopbackAddr(u)
	return ok
}

// loopbackAddr returns the network and address to listen on for the
// loopback redirect u. RFC 8252 section 7.3 names the literals 127.0.0.1
// and [::1], and each binds only itself. localhost gets 127.0.0.1: section
// 8.3 warns that it may resolve to an interface other than loopback, and
// binding by name could listen somewhere else. Any other host, an
// unspecified address (0.0.0.0, [::]) above all, gets no listener: it would
// take answers from other machines.
func loopbackAddr(u *url.URL) (network, ip string, ok bool) {
	if u.Scheme != "http" {
		return "", "", false
	}
	switch h := u.Hostname(); {
	case h == "127.0.0.1", strings.EqualFold(h, "localhost"):
		return "tcp4", "127.0.0.1", true
	case h == "::1":
		return "tcp6", "::1", true
	}
	return "", "", false
}

// loopback runs the code flow with a listener at redirect. It listens on
// the loopback address only ([loopbackAddr]), never on all interfaces, on
// redirect's port or, when it has none, on any free port (Microsoft and
// Google accept any port for a loopback redirect URI, RFC 8252 section 7.3),
// and answers one sign-in.
func (f *Flow) loopback(ctx context.Context, redirect *url.URL) (oauth.Token, error) {
	network, ip, _ := loopbackAddr(redirect)
	addr := net.JoinHostPort(ip, redirect.Port())
	ln, err := net.Listen(network, addr)
	if err != nil {
		return oauth.Token{}, fmt.Errorf("listen for the browser on %s (redirect_url): %w; "+
			"stop what uses the port, or register and store a redirect_url with another port", addr, err)
	}
	defer func() { _ = ln.Close() }()
	uri := *redirect
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	if redirect.Port() == "" {
		uri.Host = net.JoinHostPort(redirect.Hostname(), port)
	}
	req, err := f.newRequest(uri.String())
	if err != nil {
		return oauth.Token{}, err
	}
	f.printf("Open this address in a browser on this computer and sign in as %s:\n\n  %s\n\n"+
		"No browser here? Forward the port from your computer (ssh -L %s:%s this-host) "+
		"or use the device code flow (--device).\n"+
		"Waiting for the browser to come back to %s (up to %s) ...\n",
		f.LoginHint, req.url, port, net.JoinHostPort(ip, port), uri.String(), f.timeout())

	cb := &callback{flow: f, req: req, ctx: ctx, path: pathOf(redirect), host: hostKey(uri.Host),
		done: make(chan result, 1)}
	srv := &http.Server{Handler: cb, ReadHeaderTimeout: readHeaderTimeout,
		ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(ln) }()
	var res result
	select {
	case res = <-cb.done:
	case <-ctx.Done():
		res.err = ctx.Err()
	}
	shutdown(srv) // waits for a callback in flight
	if res.err != nil && ctx.Err() != nil {
		select { // a callback that finished while time ran out still counts
		case res = <-cb.done:
		default:
		}
	}
	cb.reportRefused()
	return res.tok, res.err
}

func shutdown(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if srv.Shutdown(ctx) != nil {
		_ = srv.Close()
	}
}

func pathOf(u *url.URL) string {
	if u.Path == "" {
		return "/"
	}
	return u.Path
}

type result struct {
	tok oauth.Token
	err error
}

// callback answers the browser at the redirect path. The first answer with
// this sign-in's state is used; one with another state is refused without
// redeeming its code (RFC 6749 section 10.12), and the flow goes on waiting
// for the right one. Ending the flow instead would let any program on this
// computer, or any web page in the admin's browser (it can send the browser
// to 127.0.0.1), cancel the admin's sign-in by guessing the port; so a
// refused answer is only counted, printed and logged, and the flow waits for
// the real answer until its timeout.
type callback struct {
	flow *Flow
	req  *request
	ctx  context.Context // the flow's, bounding the code's redemption
	path string
	host string      // hostKey of the redirect URL's host: what the Host header must be
	done chan result // buffered: gets the one used answer's outcome

	mu      sync.Mutex
	used    bool
	refused int // requests refused for their Host or state
}

// ServeHTTP implements [http.Handler].
func (c *callback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	noStore(w.Header())
	switch {
	case hostKey(r.Host) != c.host:
		// DNS rebinding: a web page whose name now resolves to 127.0.0.1
		// could talk to the listener as its own origin and read the pages.
		// The browser's real answer names the redirect URL's host.
		c.refuse(r, "for another host name ("+clean(r.Host)+")")
		http.Error(w, "This address does not belong to fetcher authorize.", http.StatusMisdirectedRequest)
		return
	case r.URL.Path != c.path:
		http.NotFound(w, r)
		return
	case r.Method != http.MethodGet:
		// The provider's redirect is a GET; a HEAD (a link preview) or a
		// form POST must not use up the answer.
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "Method not allowed.", http.StatusMethodNotAllowed)
		return
	}
	code, err := c.req.answer(r.URL.Query())
	switch {
	case errors.Is(err, errNoAnswer):
		writePage(w, http.StatusBadRequest, failurePage(err))
		return
	case errors.Is(err, ErrStateMismatch):
		c.refuse(r, "with a wrong state")
		writePage(w, http.StatusBadRequest, wrongStatePage())
		return
	case !c.claim():
		writePage(w, http.StatusConflict, usedPage())
		return
	}
	var tok oauth.Token
	if err == nil {
		tok, err = c.flow.redeem(c.ctx, c.req, code)
	}
	if err != nil {
		writePage(w, http.StatusBadRequest, failurePage(err))
	} else {
		writePage(w, http.StatusOK, successPage(c.flow.LoginHint))
	}
	c.done <- result{tok, err}
}

// claim reports whether this is the first answer to use.
func (c *callback) claim() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	first := !c.used
	c.used = true
	return first
}

// refuse counts a request that is not the browser's answer to this
// sign-in, tells the admin about the first one, and logs the first
// maxRefusalWarnings. Nothing of the request's query is repeated: a
// refused answer may still carry a real code.
func (c *callback) refuse(r *http.Request, why string) {
	c.mu.Lock()
	c.refused++
	n := c.refused
	c.mu.Unlock()
	if n == 1 {
		c.flow.printf("Refused a request %s: it is not this sign-in's answer (an old browser tab, "+
			"or another program or web page); still waiting.\n", why)
	}
	if n <= maxRefusalWarnings {
		c.flow.warn("authorize: refused a request to the loopback listener", "reason", why,
			"remote_addr", r.RemoteAddr, "refused", n)
	}
}

// reportRefused tells the admin how many requests were refused, once the
// listener is closed: more than one may be someone trying to interfere.
func (c *callback) reportRefused() {
	c.mu.Lock()
	n := c.refused
	c.mu.Unlock()
	if n == 0 {
		return
	}
	c.flow.printf("The listener refused %d request(s) that were not this sign-in's answer.\n", n)
	c.flow.warn("authorize: the loopback listener refused requests", "refused", n)
}

// hostKey returns an HTTP Host value as lower-case host:port, with port 80
// when it has none (a browser omits the default port).
func hostKey(h string) string {
	if _, _, err := net.SplitHostPort(h); err != nil {
		h = net.JoinHostPort(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), "80")
	}
	return strings.ToLower(h)
}
