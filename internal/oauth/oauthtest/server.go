// Package oauthtest runs a token endpoint that behaves like Microsoft's
// identity platform (v2.0 endpoints), for tests and the `fetcher demo`
// command: refresh token rotation, client credentials, Microsoft-shaped
// errors with AADSTS codes, and injected failures.
//
// Put [Server.URL] in mailboxes.authority_url; the token URL is
// URL()+"/{tenant}/oauth2/v2.0/token", and URL()+"/token" serves custom
// providers. All methods are safe for concurrent use.
package oauthtest

import (
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Defaults of [Options].
const (
	DefaultAccessTokenLifetime = 3599 * time.Second
	DefaultUser                = "user@example.com"
)

// Options configures a [Server]. The zero value behaves like Microsoft.
type Options struct {
	// AccessTokenLifetime is expires_in; default 3599 s.
	AccessTokenLifetime time.Duration
	// RotateOff makes refreshes return no refresh token, like Google.
	// By default every refresh returns a new one, like Microsoft.
	RotateOff bool
	// Strict rejects a refresh token that was already used with
	// invalid_grant AADSTS70008 and revokes its whole rotation family, as
	// providers with reuse detection do. Without it an old token keeps
	// working, as at Microsoft. Ignored with RotateOff.
	Strict bool
	// AuthorizeUser is the user who consents at the authorize endpoint when
	// the request has no login_hint; default DefaultUser.
	AuthorizeUser string
	// DenyConsent makes the authorize endpoint answer as a user who cancels
	// the consent page: a redirect with error=access_denied (AADSTS65004)
	// and the state, and no code.
	DenyConsent bool
	// Now is the clock for token expiry; default time.Now.
	Now func() time.Time
}

// Server is a fake Microsoft token endpoint on 127.0.0.1.
type Server struct {
	opts Options
	srv  *httptest.Server

	mu       sync.Mutex
	clients  map[string]string              // client id → secret; "" and no certs is a public client
	certs    map[string][]*x509.Certificate // client id → certificate credentials
	jtis     map[string]time.Time           // client id + " " + assertion jti → its exp, to refuse replays
	refresh  map[string]*grant              // refresh token → grant
	access   map[string]AccessToken
	revoked  map[string]bool // rotation families revoked by reuse
	revUsers map[string]bool // users whose grants were revoked
	codes    map[string]*authCode
	devices  map[string]*deviceCode
	failNext []Failure
	failure  *Failure
	log      []Request
}

// grant is what a refresh token stands for.
type grant struct {
	clientID string
	user     string
	scopes   []string // consented scopes; empty allows any
	family   string   // rotation family: all tokens descending from one consent
	used     bool
}

// NewServer starts a server. Close it when done.
func NewServer(opts Options) *Server {
	if opts.AccessTokenLifetime <= 0 {
		opts.AccessTokenLifetime = DefaultAccessTokenLifetime
	}
	if opts.AuthorizeUser == "" {
		opts.AuthorizeUser = DefaultUser
	}
	s := &Server{
		opts:     opts,
		clients:  map[string]string{},
		certs:    map[string][]*x509.Certificate{},
		jtis:     map[string]time.Time{},
		refresh:  map[string]*grant{},
		access:   map[string]AccessToken{},
		revoked:  map[string]bool{},
		revUsers: map[string]bool{},
		codes:    map[string]*authCode{},
		devices:  map[string]*deviceCode{},
	}
	s.srv = httptest.NewServer(s.routes())
	return s
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.handleToken)
	mux.HandleFunc("POST /token", s.handleToken)
	mux.HandleFunc("GET /{tenant}/oauth2/v2.0/authorize", s.handleAuthorize)
	mux.HandleFunc("GET /authorize", s.handleAuthorize)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/devicecode", s.handleDeviceCode)
	mux.HandleFunc("POST /devicecode", s.handleDeviceCode)
	return mux
}

// URL is the authority to store in mailboxes.authority_url, e.g.
// "http://127.0.0.1:41234".
func (s *Server) URL() string { return s.srv.URL }

// TokenURL returns the token endpoint for tenant ("" for the custom-provider
// path "/token").
func (s *Server) TokenURL(tenant string) string {
	if tenant == "" {
		return s.srv.URL + "/token"
	}
	return s.srv.URL + "/" + tenant + "/oauth2/v2.0/token"
}

// Close shuts the server down, waiting for requests in flight.
func (s *Server) Close() { s.srv.Close() }

// AddClient registers an app. An empty secret registers a public client,
// which must not send one; a confidential client must send its secret or a
// client assertion of a certificate added with [Server.AddClientCertificate].
func (s *Server) AddClient(clientID, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[clientID] = secret
}

// IssueRefreshToken returns a refresh token for user, as one consent would.
// Refreshes may ask for any of scopes (offline_access, openid, profile and
// email are always allowed); no scopes allows any.
func (s *Server) IssueRefreshToken(clientID, user string, scopes ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newRefreshToken(grant{clientID: clientID, user: user,
		scopes: scopes, family: newUUID()})
}

// RevokeUser revokes every grant of user, as a password reset does:
// refreshing fails with invalid_grant AADSTS50173.
func (s *Server) RevokeUser(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revUsers[user] = true
}

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}
