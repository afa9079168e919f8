package mailbox

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// ErrGone is wrapped by Fetch when the message no longer exists on the
// server (deleted or moved by someone else since List).
var ErrGone = errors.New("message no longer on the server")

// AuthError is a login the server refused. A person must act: the token's
// scopes, the account's permissions, or the password are wrong.
type AuthError struct {
	Mechanism string // "XOAUTH2", "LOGIN"
	Username  string
	// ServerText is what the server said, e.g. "AUTHENTICATE failed.".
	ServerText string
	// Detail describes the XOAUTH2 error challenge, when one came.
	Detail string
}

func (e *AuthError) Error() string {
	s := fmt.Sprintf("server refused %s login for %s: %s", e.Mechanism, e.Username, e.ServerText)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// IsAuth reports whether err is a refused login.
func IsAuth(err error) bool {
	var ae *AuthError
	return errors.As(err, &ae)
}

// NetError is a failure to reach or talk to the server: worth retrying.
type NetError struct {
	Op  string
	Err error
	// Bye is the reason the server gave when it hung up, if any.
	Bye string
}

func (e *NetError) Error() string {
	s := e.Op + ": " + e.Err.Error()
	if e.Bye != "" {
		s += " (server said BYE " + truncate(e.Bye, 200) + ")"
	}
	return s
}

func (e *NetError) Unwrap() error { return e.Err }

// TokenExpired reports whether the server ended the session because the
// access token expired while it was open, as Exchange Online does with
// "* BYE Session invalidated - AccessTokenExpired": a fresh token and a new
// connection fix it.
func TokenExpired(err error) bool {
	var ne *NetError
	if !errors.As(err, &ne) || ne.Bye == "" {
		return false
	}
	bye := strings.ToLower(ne.Bye)
	return strings.Contains(bye, "accesstokenexpired") || strings.Contains(bye, "token expired") ||
		strings.Contains(bye, "expired token")
}

// IsTemporary reports whether err is worth retrying later without anyone
// changing anything: network trouble, timeouts, a server that is busy.
// A refused login, a certificate that cannot be trusted and a login
// withheld from an unencrypted connection are not.
func IsTemporary(err error) bool {
	var te *TLSError
	if err == nil || IsAuth(err) || errors.As(err, &te) || errors.Is(err, ErrPlaintext) {
		return false
	}
	var ne *NetError
	var nerr net.Error
	return errors.As(err, &ne) || errors.As(err, &nerr) ||
		strings.Contains(err.Error(), "UNAVAILABLE")
}
