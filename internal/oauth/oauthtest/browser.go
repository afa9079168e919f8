package oauthtest

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Browser plays the person at the browser in tests of the sign-in flows:
// it consents at the authorize endpoint and opens the address the provider
// redirects to, as a browser would.
type Browser struct {
	noFollow *http.Client
	open     *http.Client
}

// NewBrowser returns a Browser with 10-second timeouts.
func NewBrowser() *Browser {
	return &Browser{
		noFollow: &http.Client{Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		open: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
}

// Consent opens authURL at the provider, which consents at once, and
// returns the address the provider sends the browser to, without going.
func (b *Browser) Consent(authURL string) (*url.URL, error) {
	resp, err := b.noFollow.Get(authURL)
	if err != nil {
		return nil, err
	}
	if err := resp.Body.Close(); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusFound {
		return nil, fmt.Errorf("authorize endpoint answered %s, want 302", resp.Status)
	}
	return url.Parse(resp.Header.Get("Location"))
}

// Open loads u (without keep-alive, so a single-use listener may close)
// and returns the status and the page.
func (b *Browser) Open(u string) (int, string, error) {
	resp, err := b.open.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}
