package authorize

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/url"
	"strings"

	"github.com/fetcherhq/fetcher/internal/oauth"
)

// maxPaste bounds the pasted line; a redirect address with a code is 1-2 KB.
const maxPaste = 64 << 10

var errNothingPasted = errors.New("no address was pasted")

// paste runs the code flow for a redirect URL fetcher cannot listen on (a
// web address): the admin signs in, then pastes the address the browser
// ended on. The page there need not exist.
func (f *Flow) paste(ctx context.Context, redirect *url.URL) (oauth.Token, error) {
	req, err := f.newRequest(redirect.String())
	if err != nil {
		return oauth.Token{}, err
	}
	f.printf("Open this address in a browser and sign in as %s:\n\n  %s\n\n"+
		"After sign-in the browser goes to %s (that page may show an error: that is fine).\n"+
		"Paste the full address from the browser's address bar here and press Enter (within %s):\n",
		f.LoginHint, req.url, redirect.String(), f.timeout())
	line, err := readLine(ctx, f.In)
	if err != nil {
		return oauth.Token{}, err
	}
	q, err := answerQuery(line)
	if err != nil {
		return oauth.Token{}, err
	}
	code, err := req.answer(q)
	if err != nil {
		return oauth.Token{}, err
	}
	return f.redeem(ctx, req, code)
}

// readLine reads one line from in, or gives up when ctx ends. A read from a
// terminal cannot be interrupted, so on timeout the reading goroutine stays
// blocked until the process exits.
func readLine(ctx context.Context, in io.Reader) (string, error) {
	if in == nil {
		return "", errNothingPasted
	}
	type line struct {
		s   string
		err error
	}
	ch := make(chan line, 1)
	go func() {
		s, err := bufio.NewReader(io.LimitReader(in, maxPaste)).ReadString('\n')
		ch <- line{s, err}
	}()
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case l := <-ch:
		if strings.TrimSpace(l.s) == "" {
			return "", errNothingPasted
		}
		return l.s, nil
	}
}

// answerQuery returns the parameters of a pasted redirect address: its
// query, or its fragment for a provider that answered with
// response_mode=fragment.
func answerQuery(pasted string) (url.Values, error) {
	u, err := url.Parse(strings.TrimSpace(pasted))
	if err != nil || u.Scheme == "" {
		return nil, errors.New("the pasted text is not an address: paste the full address " +
			"from the browser's address bar, starting with http")
	}
	q := u.Query()
	if !q.Has("code") && !q.Has("error") && u.Fragment != "" {
		if fq, err := url.ParseQuery(u.Fragment); err == nil {
			return fq, nil
		}
	}
	return q, nil
}
