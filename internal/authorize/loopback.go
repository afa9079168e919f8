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
	"sync"
	"time"

	"github.com/fetcherhq/fetcher/internal/oauth"
)

// Timeouts of the loopback listener.
const (
	readHeaderTimeout = 10 * time.Second
	shutdownTimeout   = 5 * time.Second
)

// IsLoopback reports whether u is a loopback redirect (RFC 8252 section 7.3)
// that fetcher answers itself: http on 127.0.0.1 or localhost.
func IsLoopback(u *url.URL) bool {
	h := u.Hostname()
	return u.Scheme == "http" && (h == "127.0.0.1" || h == "localhost")
}

// loopback runs the code flow with a listener at redirect. It listens on
// 127.0.0.1 only, never on all interfaces, on redirect's port or, when it
// has none, on any free port (Microsoft and Google accept any port for a
// loopback redirect URI), and answers one sign-in.
func (f *Flow) loopback(ctx context.Context, redirect *url.URL) (oauth.Token, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", redirect.Port()))
	if err != nil {
		return oauth.Token{}, fmt.Errorf("listen for the browser on 127.0.0.1:%s (redirect_url): %w; "+
			"stop what uses the port, or register and store a redirect_url with another port", redirect.Port(), err)
	}
	defer func() { _ = ln.Close() }()
	uri := *redirect
	if redirect.Port() == "" {
		uri.Host = net.JoinHostPort(redirect.Hostname(), strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	req, err := f.newRequest(uri.String())
	if err != nil {
		return oauth.Token{}, err
	}
	port := uri.Port()
	f.printf("Open this address in a browser on this computer and sign in as %s:\n\n  %s\n\n"+
		"No browser here? Forward the port from your computer (ssh -L %s:127.0.0.1:%s this-host) "+
		"or use the device code flow (--device).\n"+
		"Waiting for the browser to come back to %s (up to %s) ...\n",
		f.LoginHint, req.url, port, port, uri.String(), f.timeout())

	cb := &callback{flow: f, req: req, ctx: ctx, path: pathOf(redirect), done: make(chan result, 1)}
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
// redeeming its code, and the flow goes on waiting for the right one.
type callback struct {
	flow *Flow
	req  *request
	ctx  context.Context // the flow's, bounding the code's redemption
	path string
	done chan result // buffered: gets the one used answer's outcome

	mu   sync.Mutex
	used bool
}

// ServeHTTP implements [http.Handler].
func (c *callback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != c.path {
		http.NotFound(w, r)
		return
	}
	code, err := c.req.answer(r.URL.Query())
	switch {
	case errors.Is(err, errNoAnswer):
		writePage(w, http.StatusBadRequest, failurePage(err))
		return
	case errors.Is(err, ErrStateMismatch):
		c.flow.printf("Refused a sign-in answer with a wrong state (an old browser tab, or a forged link); still waiting.\n")
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
