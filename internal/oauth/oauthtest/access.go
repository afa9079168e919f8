package oauthtest

import "time"

// AccessToken is what the server knows about an access token it issued.
type AccessToken struct {
	User     string // empty for app-only tokens
	ClientID string
	Scopes   []string
	AppOnly  bool // issued by client credentials
	Expiry   time.Time
}

// AccessToken returns what accessToken stands for, if the server issued it
// and it has not expired.
func (s *Server) AccessToken(accessToken string) (AccessToken, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.access[accessToken]
	if !ok || !s.now().Before(at.Expiry) {
		return AccessToken{}, false
	}
	return at, true
}

// AccessTokenUser returns the user of a valid, unexpired delegated access
// token, for a test IMAP/POP3 server's XOAUTH2 check. App-only tokens have no
// user and return false; check them with [Server.AccessToken].
func (s *Server) AccessTokenUser(accessToken string) (user string, ok bool) {
	at, ok := s.AccessToken(accessToken)
	if !ok || at.AppOnly {
		return "", false
	}
	return at.User, true
}

// newAccessToken stores and returns a new access token. s.mu must be held.
func (s *Server) newAccessToken(g grant, scopes []string, appOnly bool) string {
	tok := newJWTLike()
	s.access[tok] = AccessToken{User: g.user, ClientID: g.clientID, Scopes: scopes,
		AppOnly: appOnly, Expiry: s.now().Add(s.opts.AccessTokenLifetime)}
	return tok
}

// newRefreshToken stores and returns a new refresh token. s.mu must be held.
func (s *Server) newRefreshToken(g grant) string {
	tok := newOpaqueToken()
	g.used = false
	s.refresh[tok] = &g
	return tok
}
