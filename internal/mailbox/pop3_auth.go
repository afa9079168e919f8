package mailbox

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// pop3UserPass names the RFC 1939 password login in an AuthError.
const pop3UserPass = "USER/PASS"

// login authenticates with XOAUTH2 when the account has an access token,
// otherwise with USER and PASS (RFC 1939 section 7). Neither is sent over
// an unencrypted connection unless the account allows it (RFC 2595
// sections 2.2 and 2.3).
func (s *pop3Session) login() error {
	if !s.secure && !s.acct.AllowPlaintext {
		mech := pop3UserPass
		if s.acct.AccessToken != "" {
			mech = XOAUTH2
		}
		return plaintextError(s.acct, mech)
	}
	if s.acct.AccessToken != "" {
		return hideCredentials(s.authXOAUTH2(), s.acct)
	}
	if _, err := s.cmd("USER", s.acct.Username); err != nil {
		// Some servers refuse at USER already, e.g. plaintext logins on
		// an unencrypted connection.
		return s.loginError(pop3UserPass, err, nil)
	}
	_, err := s.cmd("PASS", s.acct.Password)
	return hideCredentials(s.loginError(pop3UserPass, err, nil), s.acct)
}

// authXOAUTH2 runs SASL XOAUTH2 in the two-step form of RFC 5034 section
// 4, the one Exchange Online's POP3 takes: "AUTH XOAUTH2" alone, the
// server's "+", then the base64 response on its own line. Exchange refuses
// the initial response on the AUTH line, and an encoded token of 1.5 KB or
// more is longer than some servers take on a command line.
//
// A refused token gets a "+ <base64 JSON>" challenge (see xoauth2Client),
// answered with an empty line; the final -ERR follows.
func (s *pop3Session) authXOAUTH2() error {
	const label = "AUTH " + XOAUTH2
	if err := s.send(label, label); err != nil {
		return err
	}
	r, err := s.next(label)
	if err != nil {
		return err
	}
	if r.kind == replyOK {
		return &NetError{Op: "POP3 " + label, Err: errors.New("server said +OK before any credentials")}
	}
	if r.kind == replyErr { // e.g. no XOAUTH2 on this server
		return s.authEnd(r, nil, nil)
	}
	ir := base64.StdEncoding.EncodeToString(XOAUTH2Response(s.acct.Username, s.acct.AccessToken))
	if err := s.send(label+" response", ir); err != nil {
		return err
	}
	if r, err = s.next(label); err != nil || r.kind != replyMore {
		return s.authEnd(r, err, nil)
	}
	challenge, derr := base64.StdEncoding.DecodeString(r.text)
	if derr != nil {
		challenge = []byte(r.text)
	}
	if err := s.send(label+" response", ""); err != nil {
		return err
	}
	if r, err = s.next(label); err != nil || r.kind != replyMore {
		return s.authEnd(r, err, challenge)
	}
	// XOAUTH2 has no third step: cancel (RFC 5034 section 4) and read
	// the -ERR that ends the exchange.
	if err := s.send(label, "*"); err != nil {
		return err
	}
	r, err = s.next(label)
	return s.authEnd(r, err, challenge)
}

// authEnd turns the reply that ends an AUTH exchange into its result.
func (s *pop3Session) authEnd(r pop3Reply, err error, challenge []byte) error {
	const label = "AUTH " + XOAUTH2
	switch {
	case err != nil:
		return err
	case r.kind == replyOK:
		return nil
	case r.kind == replyMore:
		return &NetError{Op: "POP3 " + label, Err: fmt.Errorf("unexpected continuation %q", truncate(r.text, 100))}
	}
	return s.loginError(XOAUTH2, s.refusal(label, r.text), challenge)
}

// loginError tells a refused login (a person must act) from a server that
// cannot log anyone in right now: a -ERR with [SYS/TEMP], [IN-USE] or
// [LOGIN-DELAY] is already a NetError (see refusal), and [SYS/PERM] (RFC
// 3206: the server's own trouble) is not the credentials' fault either.
func (s *pop3Session) loginError(mech string, err error, challenge []byte) error {
	var pe *pop3Error
	if err == nil || !errors.As(err, &pe) {
		return err
	}
	if c := pe.code(); c == "SYS/PERM" || strings.HasPrefix(c, "SYS/PERM/") {
		return fmt.Errorf("%s login for %s: %w", mech, s.acct.Username, err)
	}
	if pe.code() == "" && soundsTemporary(pe.text) {
		// Exchange answers a busy backend with a bare "-ERR Server
		// Unavailable. 21": not the credentials' fault.
		return &NetError{Op: "POP3 " + mech + " login", Err: err}
	}
	return &AuthError{
		Mechanism: mech, Username: s.acct.Username,
		ServerText: "-ERR " + pe.text, Detail: describeChallenge(challenge),
	}
}

// soundsTemporary reads a code-less -ERR for the words servers use when
// they cannot log anyone in right now.
func soundsTemporary(text string) bool {
	t := strings.ToLower(text)
	for _, w := range []string{"unavailable", "temporar", "try again", "too many connections", "busy"} {
		if strings.Contains(t, w) {
			return true
		}
	}
	return false
}
