package oauthtest

import "crypto/subtle"

// authenticate checks the client id and secret as Microsoft does: a
// confidential client must send its secret, a public client must not.
// s.mu must be held.
func (s *Server) authenticate(req tokenRequest) *Failure {
	secret, known := s.clients[req.clientID]
	switch {
	case req.clientID == "":
		f := missingParam("client_id")
		return &f
	case !known:
		f := appNotFound(req.clientID, req.tenant)
		return &f
	case secret == "" && req.secret != "":
		return &Failure{Status: 401, Code: "invalid_client", AADSTS: 700025, Message: "Client " +
			"is public so neither 'client_assertion' nor 'client_secret' should be presented."}
	case secret != "" && req.secret == "":
		return &Failure{Status: 401, Code: "invalid_client", AADSTS: 7000218, Message: "The " +
			"request body must contain the following parameter: 'client_assertion' or 'client_secret'."}
	case subtle.ConstantTimeCompare([]byte(secret), []byte(req.secret)) != 1:
		f := WrongSecret()
		return &f
	}
	return nil
}

// confidential reports whether clientID has a secret. s.mu must be held.
func (s *Server) confidential(clientID string) bool { return s.clients[clientID] != "" }
