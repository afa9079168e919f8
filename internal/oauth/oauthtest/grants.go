package oauthtest

import (
	"slices"
	"strings"
)

// refreshGrant serves grant_type=refresh_token (RFC 6749 section 6).
// s.mu must be held.
func (s *Server) refreshGrant(req tokenRequest) (*tokenResponse, *Failure) {
	if f := s.authenticate(req); f != nil {
		return nil, f
	}
	rt := req.form.Get("refresh_token")
	if rt == "" {
		return fail(missingParam("refresh_token"))
	}
	scopes := strings.Fields(req.form.Get("scope"))
	if len(scopes) == 0 {
		return fail(ScopeMissing())
	}
	g, f := s.useRefreshToken(rt, req.clientID)
	if f != nil {
		return nil, f
	}
	if !g.allows(scopes) {
		return fail(ConsentMissing())
	}
	return s.issue(*g, scopes, !s.opts.RotateOff), nil
}

// useRefreshToken looks rt up and marks it used. s.mu must be held.
func (s *Server) useRefreshToken(rt, clientID string) (*grant, *Failure) {
	g, ok := s.refresh[rt]
	switch {
	case !ok || s.revoked[g.family]:
		return fail2(ExpiredRefreshToken())
	case s.revUsers[g.user]:
		return fail2(GrantRevoked())
	case g.clientID != clientID:
		return fail2(Failure{Status: 400, Code: "invalid_grant", AADSTS: 70000,
			Message: "Provided grant is invalid or malformed."})
	case g.used && s.opts.Strict:
		s.revoked[g.family] = true // reuse detected: revoke the whole family
		return fail2(ExpiredRefreshToken())
	}
	g.used = !s.opts.RotateOff
	return g, nil
}

func fail2(f Failure) (*grant, *Failure) { return nil, &f }

// clientCredentialsGrant serves grant_type=client_credentials (RFC 6749
// section 4.4): a real tenant, a confidential client, a /.default scope, and
// no refresh token. s.mu must be held.
func (s *Server) clientCredentialsGrant(req tokenRequest) (*tokenResponse, *Failure) {
	switch strings.ToLower(req.tenant) {
	case "common", "organizations", "consumers":
		return fail(Failure{Status: 400, Code: "invalid_request", AADSTS: 9001023, Message: "The " +
			"grant type is not supported over the /common or /consumers endpoints. Please use " +
			"the /organizations or tenant-specific endpoint."})
	}
	if f := s.authenticate(req); f != nil {
		return nil, f
	}
	if !s.confidential(req.clientID) {
		return fail(Failure{Status: 401, Code: "invalid_client", AADSTS: 7000218, Message: "The " +
			"request body must contain the following parameter: 'client_assertion' or 'client_secret'."})
	}
	scope := req.form.Get("scope")
	if f := checkDefaultScope(scope); f != nil {
		return nil, f
	}
	g := grant{clientID: req.clientID}
	return &tokenResponse{TokenType: "Bearer", Scope: scope, ExpiresIn: s.expiresIn(),
		ExtExpiresIn: s.expiresIn(), AccessToken: s.newAccessToken(g, []string{scope}, true)}, nil
}

func checkDefaultScope(scope string) *Failure {
	if scope == "" {
		f := ScopeMissing()
		return &f
	}
	if len(strings.Fields(scope)) != 1 || !strings.HasSuffix(scope, "/.default") {
		return &Failure{Status: 400, Code: "invalid_scope", AADSTS: 1002012, Message: "The " +
			"provided value for scope " + scope + " is not valid. Client credential flows must " +
			"have a scope value with /.default suffixed to the resource identifier (application ID URI)."}
	}
	return nil
}

// issue returns a delegated token response for g, with a new refresh token of
// the same family when withRefresh. s.mu must be held.
func (s *Server) issue(g grant, scopes []string, withRefresh bool) *tokenResponse {
	resp := &tokenResponse{TokenType: "Bearer", Scope: strings.Join(scopes, " "),
		ExpiresIn: s.expiresIn(), ExtExpiresIn: s.expiresIn(),
		AccessToken: s.newAccessToken(g, scopes, false)}
	if withRefresh {
		resp.RefreshToken = s.newRefreshToken(g)
	}
	return resp
}

func (s *Server) expiresIn() int { return int(s.opts.AccessTokenLifetime.Seconds()) }

// allows reports whether a refresh may ask for scopes: each must have been
// consented, or be a /.default of a consented resource. OpenID scopes and
// offline_access are always allowed; a grant without scopes allows any.
func (g *grant) allows(scopes []string) bool {
	if len(g.scopes) == 0 {
		return true
	}
	for _, sc := range scopes {
		if !openIDScope(sc) && !slices.Contains(g.scopes, sc) && !g.hasResource(sc) {
			return false
		}
	}
	return true
}

func (g *grant) hasResource(scope string) bool {
	res, ok := strings.CutSuffix(scope, "/.default")
	if !ok {
		return false
	}
	return slices.ContainsFunc(g.scopes, func(s string) bool { return strings.HasPrefix(s, res+"/") })
}

func openIDScope(s string) bool {
	switch s {
	case "offline_access", "openid", "profile", "email":
		return true
	}
	return false
}
