package mailboxtest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
)

// pop3Conn is one client connection: the AUTHORIZATION state until a
// login locks a maildrop, then TRANSACTION (RFC 1939 section 3).
type pop3Conn struct {
	srv *POP3Server
	raw net.Conn // the TCP connection, closed at the end
	c   net.Conn // raw, or TLS over it after STLS
	r   *bufio.Reader
	tls bool

	user   string        // from USER, until PASS
	authed string        // the logged-in user; "" before login
	token  string        // the access token of an XOAUTH2 login
	msgs   []pop3Message // the maildrop as it was at login
	marked map[int]bool  // message numbers DELE marked
}

func (s *POP3Server) serve(raw net.Conn) {
	pc := &pop3Conn{srv: s, raw: raw, c: raw, r: bufio.NewReader(raw), marked: map[int]bool{}}
	pc.tls = s.opts.Security == "" || s.opts.Security == "tls"
	defer func() {
		if pc.authed != "" {
			// Cut off before QUIT: nothing is deleted (RFC 1939 section 6).
			s.unlock(pc.authed, nil)
		}
		_ = raw.Close()
		s.mu.Lock()
		delete(s.open, raw)
		s.mu.Unlock()
		s.conns.Add(-1)
	}()
	pc.reply("+OK POP3 server ready <1896.697170952@fetcher.test>")
	for {
		line, err := pc.r.ReadString('\n')
		if err != nil {
			return
		}
		if pc.r.Buffered() > 0 {
			s.pipelined.Add(1)
		}
		verb, arg, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		verb = strings.ToUpper(verb)
		if s.opts.StallOn != "" && verb == s.opts.StallOn {
			_, _ = io.Copy(io.Discard, pc.r) // until the client hangs up
			return
		}
		if !pc.handle(verb, arg) {
			return
		}
	}
}

func (pc *pop3Conn) reply(line string) { _, _ = io.WriteString(pc.c, line+"\r\n") }

// multi sends a multi-line response: status, lines, ".".
func (pc *pop3Conn) multi(status string, lines []string) {
	var b strings.Builder
	b.WriteString(status + "\r\n")
	for _, l := range lines {
		if strings.HasPrefix(l, ".") {
			b.WriteByte('.')
		}
		b.WriteString(l + "\r\n")
	}
	b.WriteString(".\r\n")
	_, _ = io.WriteString(pc.c, b.String())
}

// handle runs one command; false ends the connection.
func (pc *pop3Conn) handle(verb, arg string) bool {
	switch verb {
	case "CAPA":
		pc.multi("+OK Capability list follows", pc.caps())
		return true
	case "NOOP":
		pc.reply("+OK")
		return true
	case "QUIT":
		if pc.authed != "" {
			// Delete now, before the +OK, so that a client that has read
			// it finds the maildrop as QUIT left it.
			pc.srv.unlock(pc.authed, pc.deleted())
			pc.authed = ""
			pc.reply("+OK Logging out, messages deleted.")
			return false
		}
		pc.reply("+OK Logging out.")
		return false
	}
	if pc.authed == "" {
		return pc.authorization(verb, arg)
	}
	return pc.transaction(verb, arg)
}

func (pc *pop3Conn) deleted() map[string]bool {
	out := map[string]bool{}
	for n := range pc.marked {
		out[pc.msgs[n-1].uidl] = true
	}
	return out
}

func (pc *pop3Conn) caps() []string {
	caps := []string{"TOP", "RESP-CODES", "AUTH-RESP-CODE", "USER", "SASL XOAUTH2"}
	if !pc.srv.opts.NoUIDL {
		caps = append(caps, "UIDL")
	}
	if pc.srv.opts.Pipelining {
		caps = append(caps, "PIPELINING")
	}
	if pc.srv.opts.Security == "starttls" && !pc.tls {
		caps = append(caps, "STLS")
	}
	return caps
}

func (pc *pop3Conn) authorization(verb, arg string) bool {
	switch verb {
	case "STLS":
		return pc.startTLS()
	case "USER", "PASS", "AUTH":
		if pc.srv.opts.Security == "starttls" && !pc.tls {
			pc.reply("-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.")
			return true
		}
	}
	switch verb {
	case "USER":
		pc.user = arg
		pc.reply("+OK")
	case "PASS":
		pc.pass(arg)
	case "AUTH":
		return pc.auth(arg)
	default:
		pc.reply("-ERR Unknown command.")
	}
	return true
}

func (pc *pop3Conn) startTLS() bool {
	if pc.srv.opts.Security != "starttls" || pc.tls {
		pc.reply("-ERR Unknown command.")
		return true
	}
	pc.reply("+OK Begin TLS negotiation now.")
	tc := tls.Server(pc.raw, pc.srv.tlsCfg)
	if err := tc.Handshake(); err != nil {
		return false
	}
	pc.c, pc.r, pc.tls = tc, bufio.NewReader(tc), true
	return true
}

func (pc *pop3Conn) pass(password string) {
	pc.srv.mu.Lock()
	d := pc.srv.users[pc.user]
	ok := d != nil && d.password != "" && d.password == password
	pc.srv.mu.Unlock()
	if !ok {
		pc.reply("-ERR [AUTH] Authentication failed.")
		return
	}
	pc.loggedIn(pc.user, "")
}

// loggedIn locks the maildrop, or answers [IN-USE] as RFC 2449 section
// 8.1.1 describes.
func (pc *pop3Conn) loggedIn(user, token string) {
	msgs, err := pc.srv.lock(user)
	if errors.Is(err, errInUse) {
		pc.reply("-ERR [IN-USE] Mailbox is locked by another POP3 session.")
		return
	}
	if err != nil {
		pc.reply("-ERR [AUTH] Authentication failed.")
		return
	}
	pc.authed, pc.token, pc.msgs = user, token, msgs
	pc.reply("+OK Logged in.")
}

// auth runs AUTH XOAUTH2 the way Exchange Online's POP3 does: the initial
// response must come on a line of its own after "+ ", and a refused token
// gets a JSON challenge, then -ERR after the client's empty answer.
func (pc *pop3Conn) auth(arg string) bool {
	mech, ir, _ := strings.Cut(arg, " ")
	if !strings.EqualFold(mech, "XOAUTH2") {
		pc.reply("-ERR Unsupported authentication mechanism.")
		return true
	}
	if ir != "" {
		pc.reply("-ERR Protocol error: no initial response on the AUTH line.")
		return true
	}
	pc.reply("+ ")
	line, err := pc.r.ReadString('\n')
	if err != nil {
		return false
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "*" {
		pc.reply("-ERR Authentication aborted.")
		return true
	}
	resp, err := base64.StdEncoding.DecodeString(line)
	user, token, ok := parseXOAUTH2(resp)
	check := pc.srv.opts.CheckToken
	if err == nil && ok && check != nil && check(user, token) {
		pc.loggedIn(user, token)
		return true
	}
	challenge := `{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/POP.AccessAsUser.All"}`
	pc.reply("+ " + base64.StdEncoding.EncodeToString([]byte(challenge)))
	if _, err := pc.r.ReadString('\n'); err != nil {
		return false
	}
	pc.reply("-ERR Authentication failure: unknown user name or bad password.")
	return true
}

func (pc *pop3Conn) transaction(verb, arg string) bool {
	switch verb {
	case "STAT":
		n, size := 0, 0
		for i, m := range pc.msgs {
			if !pc.marked[i+1] {
				n, size = n+1, size+len(m.raw)
			}
		}
		pc.reply(fmt.Sprintf("+OK %d %d", n, size))
	case "LIST":
		pc.listing(arg, func(m pop3Message) string { return strconv.Itoa(len(m.raw)) })
	case "UIDL":
		if pc.srv.opts.NoUIDL {
			pc.reply("-ERR Unknown command.")
			return true
		}
		pc.listing(arg, func(m pop3Message) string { return m.uidl })
	case "RETR":
		return pc.retr(arg)
	case "TOP":
		pc.top(arg)
	case "DELE":
		if n, ok := pc.msg(arg); ok {
			pc.marked[n] = true
			pc.reply("+OK Marked to be deleted.")
		}
	case "RSET":
		pc.marked = map[int]bool{}
		pc.reply("+OK")
	default:
		pc.reply("-ERR Unknown command.")
	}
	return true
}

// msg parses a message number that names a message not marked deleted,
// answering -ERR when it does not.
func (pc *pop3Conn) msg(arg string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(arg))
	if err != nil || n < 1 || n > len(pc.msgs) || pc.marked[n] || pc.vanished(n) {
		pc.reply("-ERR There's no message " + arg + ".")
		return 0, false
	}
	return n, true
}

// listing answers LIST or UIDL, for one message or all of them.
func (pc *pop3Conn) listing(arg string, field func(pop3Message) string) {
	if arg != "" {
		if n, ok := pc.msg(arg); ok {
			pc.reply(fmt.Sprintf("+OK %d %s", n, field(pc.msgs[n-1])))
		}
		return
	}
	var lines []string
	for i, m := range pc.msgs {
		if !pc.marked[i+1] {
			lines = append(lines, fmt.Sprintf("%d %s", i+1, field(m)))
		}
	}
	pc.multi("+OK", lines)
}

func (pc *pop3Conn) retr(arg string) bool {
	n, ok := pc.msg(arg)
	if !ok {
		return true
	}
	if handled, keep := pc.refuseRETR(n); handled {
		return keep
	}
	if valid := pc.srv.opts.SessionValid; valid != nil && pc.token != "" && !valid(pc.authed, pc.token) {
		pc.reply("-ERR Session invalidated - AccessTokenExpired")
		return false
	}
	raw := pc.msgs[n-1].raw
	resp := append([]byte(fmt.Sprintf("+OK %d octets\r\n", len(raw))), stuff(raw)...)
	if pc.srv.dropRETR.Load() {
		_, _ = pc.c.Write(resp[:len(resp)/2])
		return false
	}
	_, _ = pc.c.Write(resp)
	return true
}

// top answers TOP n lines: the header, the blank line and the first lines
// of the body (RFC 1939 section 7).
func (pc *pop3Conn) top(arg string) {
	num, count, _ := strings.Cut(arg, " ")
	lines, err := strconv.Atoi(count)
	if err != nil || lines < 0 {
		pc.reply("-ERR Bad arguments.")
		return
	}
	n, ok := pc.msg(num)
	if !ok {
		return
	}
	raw := pc.msgs[n-1].raw
	end := len(raw)
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		end = i + 4
		for ; lines > 0 && end < len(raw); lines-- {
			j := bytes.IndexByte(raw[end:], '\n')
			if j < 0 {
				end = len(raw)
				break
			}
			end += j + 1
		}
	}
	_, _ = pc.c.Write(append([]byte("+OK\r\n"), stuff(raw[:end])...))
}

// stuff byte-stuffs raw for a multi-line response (RFC 1939 section 3):
// every line starting with "." gets another in front, a final CRLF is
// added when raw lacks one, and ".\r\n" ends it.
func stuff(raw []byte) []byte {
	out := make([]byte, 0, len(raw)+len(raw)/64+5)
	atLineStart := true
	for _, c := range raw {
		if atLineStart && c == '.' {
			out = append(out, '.')
		}
		out = append(out, c)
		atLineStart = c == '\n'
	}
	if len(raw) > 0 && !atLineStart {
		out = append(out, '\r', '\n')
	}
	return append(out, ".\r\n"...)
}
