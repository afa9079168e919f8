package mailbox

import (
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// exchangeAuthHint says where SMTP AUTH is switched off most often.
const exchangeAuthHint = "check the port (587 with STARTTLS or 465 with implicit TLS; port 25 takes no logins) " +
	"and that SMTP AUTH is enabled for the mailbox (Exchange Online: " +
	"Set-CASMailbox -Identity <address> -SmtpClientAuthenticationDisabled $false)"

// submissionMech names the mechanism a login of acct would use first.
func submissionMech(acct Account) string {
	if acct.AccessToken != "" {
		return XOAUTH2
	}
	return sasl.Plain
}

// login authenticates with AUTH (RFC 4954): XOAUTH2 when the account has
// an access token, else PLAIN, or LOGIN where PLAIN is not offered.
func (s *Submission) login() error {
	if !s.secure && !s.acct.AllowPlaintext {
		// OpenSubmission refuses such an account before connecting; this
		// keeps it so should the paths that lead here change.
		return plaintextError(s.acct, submissionMech(s.acct))
	}
	ok, mechs := s.c.Extension("AUTH")
	if !ok {
		return fmt.Errorf("%s offers no AUTH on this connection (its EHLO reply lists none), so no login was tried: %s",
			s.acct.addr(), exchangeAuthHint)
	}
	mech, sc, err := s.saslClient(strings.Fields(mechs))
	if err != nil {
		return err
	}
	return s.authError(mech, s.c.Auth(sc), sc)
}

// saslClient picks the mechanism among those the server offers.
func (s *Submission) saslClient(offered []string) (string, sasl.Client, error) {
	has := func(mech string) bool {
		for _, m := range offered {
			if strings.EqualFold(m, mech) {
				return true
			}
		}
		return false
	}
	switch {
	case s.acct.AccessToken != "" && has(XOAUTH2):
		return XOAUTH2, &smtpXOAUTH2{username: s.acct.Username, token: s.acct.AccessToken}, nil
	case s.acct.AccessToken != "":
		return "", nil, fmt.Errorf("%s offers no XOAUTH2 (AUTH %s), so the token cannot be used: %s",
			s.acct.addr(), s.boundText(strings.Join(offered, " ")), exchangeAuthHint)
	case has(sasl.Plain):
		return sasl.Plain, sasl.NewPlainClient("", s.acct.Username, s.acct.Password), nil
	case has(sasl.Login):
		return sasl.Login, &smtpLogin{username: s.acct.Username, password: s.acct.Password}, nil
	}
	return "", nil, fmt.Errorf("%s offers neither PLAIN nor LOGIN (AUTH %s) for a password login: %s",
		s.acct.addr(), s.boundText(strings.Join(offered, " ")), exchangeAuthHint)
}

// authError tells a refused login (a person must act) from a server that
// cannot log anyone in right now (4xx, e.g. "454 4.7.0 Temporary
// authentication failure", RFC 4954 section 6) and from a broken
// connection.
func (s *Submission) authError(mech string, err error, sc sasl.Client) error {
	if err == nil {
		return nil
	}
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return &NetError{Op: mech + " login to " + s.acct.addr(), Err: err}
	}
	reply := s.smtpError("auth", se.Code, enhancedOf(se.EnhancedCode), se.Message)
	if reply.Temporary() {
		return s.temporary(reply)
	}
	var challenge []byte
	if x, ok := sc.(*smtpXOAUTH2); ok {
		challenge = x.challenge
	}
	return &authRefused{
		auth: &AuthError{
			Mechanism: mech, Username: s.acct.Username,
			ServerText: replyText(reply), Detail: describeChallenge(challenge),
		},
		reply: reply,
	}
}

// replyText is the reply as the server sent it: "535 5.7.3 Authentication
// unsuccessful".
func replyText(e *SMTPError) string {
	s := fmt.Sprint(e.Code)
	for _, part := range []string{e.Enhanced, e.Text} {
		if part != "" {
			s += " " + part
		}
	}
	return s
}

// authRefused is a refused AUTH: errors.As finds both the *AuthError
// (IsAuth) and the *SMTPError with the reply.
type authRefused struct {
	auth  *AuthError
	reply *SMTPError
}

func (e *authRefused) Error() string { return e.auth.Error() }

func (e *authRefused) Unwrap() []error { return []error{e.auth, e.reply} }

// smtpXOAUTH2 is XOAUTH2 in the two-step form RFC 4954 section 4 gives
// and Microsoft documents for SMTP: "AUTH XOAUTH2" alone, the server's
// empty 334, then the base64 response on its own line. A token is 1.5 KB
// or more once encoded, over the line length Dovecot's submission server
// and Google take on the AUTH line itself. go-smtp sends no initial
// response when Start returns none.
//
// A refused token gets a 334 with a base64 JSON challenge, kept for the
// error and answered with an empty line; the 535 follows.
type smtpXOAUTH2 struct {
	username, token string
	step            int
	challenge       []byte
}

var _ sasl.Client = (*smtpXOAUTH2)(nil)

func (c *smtpXOAUTH2) Start() (string, []byte, error) { return XOAUTH2, nil, nil }

func (c *smtpXOAUTH2) Next(challenge []byte) ([]byte, error) {
	c.step++
	switch c.step {
	case 1:
		return XOAUTH2Response(c.username, c.token), nil
	case 2:
		c.challenge = append([]byte(nil), challenge...)
		return []byte{}, nil
	}
	// XOAUTH2 has no third step: go-smtp cancels with "*".
	return nil, errors.New("the server sent a third XOAUTH2 challenge")
}

// smtpLogin is the LOGIN mechanism (draft-murchison-sasl-login): the user
// name after the first 334, the password after the second. Unlike go-sasl's
// client it sends no initial response and does not insist on the prompt
// texts, which servers word differently ("Username:", "User Name").
type smtpLogin struct {
	username, password string
	step               int
}

var _ sasl.Client = (*smtpLogin)(nil)

func (c *smtpLogin) Start() (string, []byte, error) { return sasl.Login, nil, nil }

func (c *smtpLogin) Next([]byte) ([]byte, error) {
	c.step++
	switch c.step {
	case 1:
		return []byte(c.username), nil
	case 2:
		return []byte(c.password), nil
	}
	return nil, errors.New("the server sent a third LOGIN challenge")
}
