package oauthtest

import "crypto/subtle"

// authenticate checks the client as Microsoft does: a confidential client
// must send its secret or a client assertion signed with one of its
// certificates, a public client neither. s.mu must be held.
func (s *Server) authenticate(req tokenRequest) *Failure {
	secret, known := s.clients[req.clientID]
	switch {
	case req.clientID == "":
		return ptr(missingParam("client_id"))
	case !known:
		return ptr(appNotFound(req.clientID, req.tenant))
	case req.secret != "" && req.assertion != "":
		return &Failure{Status: 400, Code: "invalid_request", Message: "The request must " +
			"contain only one client credential: 'client_assertion' or 'client_secret'."}
	case !s.confidential(req.clientID) && (req.secret != "" || req.assertion != ""):
		return &Failure{Status: 401, Code: "invalid_client", AADSTS: 700025, Message: "Client " +
			"is public so neither 'client_assertion' nor 'client_secret' should be presented."}
	case req.secret == "" && req.assertion == "" && s.confidential(req.clientID):
		return &Failure{Status: 401, Code: "invalid_client", AADSTS: 7000218, Message: "The " +
			"request body must contain the following parameter: 'client_assertion' or 'client_secret'."}
	case req.assertion != "":
		return s.verifyAssertion(req)
	case req.secret != "" && (secret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(req.secret)) != 1):
		return ptr(WrongSecret())
	}
	return nil
}

// confidential reports whether clientID has a secret or a certificate.
// s.mu must be held.
func (s *Server) confidential(clientID string) bool {
	return s.clients[clientID] != "" || len(s.certs[clientID]) > 0
}

func ptr(f Failure) *Failure { return &f }
