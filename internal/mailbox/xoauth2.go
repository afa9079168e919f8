package mailbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// XOAUTH2 is the SASL mechanism name Google and Microsoft use for OAuth
// bearer tokens.
const XOAUTH2 = "XOAUTH2"

// xoauth2Client implements the client side of XOAUTH2, which go-sasl no
// longer provides. The initial response is
// "user=" user "\x01auth=Bearer " token "\x01\x01". On failure the server
// sends a base64 JSON challenge ({"status":"401","schemes":"bearer",...});
// the client must answer it with an empty response and then reads the
// final NO (Google's and Microsoft's XOAUTH2 documentation).
type xoauth2Client struct {
	username, token string
	// challenge keeps the server's error challenge, for the error message.
	challenge []byte
}

var _ sasl.Client = (*xoauth2Client)(nil)

// NewXOAUTH2Client returns a SASL client that logs in as username with an
// OAuth 2.0 access token.
func NewXOAUTH2Client(username, token string) sasl.Client {
	return &xoauth2Client{username: username, token: token}
}

func (c *xoauth2Client) Start() (string, []byte, error) {
	return XOAUTH2, XOAUTH2Response(c.username, c.token), nil
}

func (c *xoauth2Client) Next(challenge []byte) ([]byte, error) {
	c.challenge = append([]byte(nil), challenge...)
	return []byte{}, nil
}

// authenticateIMAP runs AUTHENTICATE with sc, and returns also when the
// connection closes. go-imap's Authenticate waits forever when the server
// sends its tagged reply right behind a challenge, before the client
// answered it: the reply completes the command before Authenticate waits
// for the next challenge, and nothing ends that wait. Here the command
// deadline or the context ends the login by closing the connection; the
// stuck goroutine stays blocked, holding only this session.
func authenticateIMAP(c *imapclient.Client, sc sasl.Client) error {
	done := make(chan error, 1)
	go func() { done <- c.Authenticate(sc) }()
	select {
	case err := <-done:
		return err
	case <-c.Closed():
	}
	// Closing ends every wait but that one: give Authenticate a moment
	// to return the command's own result (a NO and then a hang-up is a
	// refused login) and to be done with sc.
	select {
	case err := <-done:
		return err
	case <-time.After(250 * time.Millisecond):
		return errors.New("the connection closed while AUTHENTICATE waited for a challenge the server never sent")
	}
}

// XOAUTH2Response builds the initial client response.
func XOAUTH2Response(username, token string) []byte {
	return []byte("user=" + username + "\x01auth=Bearer " + token + "\x01\x01")
}

// XOAUTH2Challenge is the JSON error a server sends when it refuses a token.
type XOAUTH2Challenge struct {
	Status  string `json:"status"`
	Schemes string `json:"schemes"`
	Scope   string `json:"scope"`
}

// describeChallenge turns the error challenge into words for an error
// message. The server built it; should it quote the token, hideCredentials
// hides it.
func describeChallenge(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	var ch XOAUTH2Challenge
	if err := json.Unmarshal(raw, &ch); err != nil {
		return fmt.Sprintf("server challenge %q", truncate(string(raw), 200))
	}
	s := "status " + ch.Status
	if ch.Scope != "" {
		s += ", wanted scope " + ch.Scope
	}
	// Bounded like the text above: the server decides the length. The cut
	// may split a character, whose remains are dropped.
	return strings.ToValidUTF8(truncate(s, 300), "")
}

// minSecretPiece is the shortest run of a secret's bytes that is hidden:
// an echo may come cut (see truncate), and a shorter run may be a word.
const minSecretPiece = 16

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
