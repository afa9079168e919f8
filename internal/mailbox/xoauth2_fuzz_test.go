package mailbox

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzXOAUTH2 checks the SASL XOAUTH2 client on its own: the initial
// response carries user and token so that they read back the same, raw
// and through the base64 that goes on the wire; the server's error
// challenge, whatever its bytes, is answered with an empty response, kept
// as it came, and described in one bounded, valid UTF-8 phrase.
func FuzzXOAUTH2(f *testing.F) {
	f.Add("support@contoso.com", "eyJ0eXAiOiJKV1QiLCJub25jZSI6.x.y",
		[]byte(`{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/IMAP.AccessAsUser.All"}`))
	f.Add("someone@gmail.com", "ya29.a0AfB_byC", []byte(`{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`))
	f.Add("a@b", "t", []byte(`{"status":"invalid_token"}`))
	f.Add("", "", []byte(`not json at all`))
	f.Add("ü@例え.jp", "tok\x01en", []byte("{\"status\":\"401\\r\\n\\u0000\",\"scope\":\"\xff\"}"))
	f.Add("u", strings.Repeat("t", 3000), []byte(`{"status":"401","scope":"`+strings.Repeat("s", 400)+`"}`))
	f.Fuzz(func(t *testing.T, user, token string, challenge []byte) {
		c := NewXOAUTH2Client(user, token)
		mech, ir, err := c.Start()
		if err != nil || mech != XOAUTH2 || !bytes.Equal(ir, XOAUTH2Response(user, token)) {
			t.Fatalf("Start() = %q, %q, %v", mech, ir, err)
		}
		wire := base64.StdEncoding.EncodeToString(ir)
		if strings.ContainsAny(wire, "\r\n ") {
			t.Fatalf("the encoded response %q is not one word", wire)
		}
		if back, err := base64.StdEncoding.DecodeString(wire); err != nil || !bytes.Equal(back, ir) {
			t.Fatalf("base64 round trip: %q, %v", back, err)
		}
		if !strings.Contains(user+token, "\x01") {
			gotUser, gotToken, ok := parseXOAUTH2(ir)
			if !ok || gotUser != user || gotToken != token {
				t.Fatalf("response %q reads back as %q, %q, %v", ir, gotUser, gotToken, ok)
			}
		}

		in := append([]byte{}, challenge...)
		resp, err := c.Next(in)
		if err != nil || resp == nil || len(resp) != 0 {
			t.Fatalf("Next() = %q, %v; want an empty response", resp, err)
		}
		for i := range in { // the client must have kept a copy
			in[i] = 'x'
		}
		if kept := c.(*xoauth2Client).challenge; !bytes.Equal(kept, challenge) {
			t.Fatalf("challenge kept as %q, want %q", kept, challenge)
		}

		desc := describeChallenge(challenge)
		switch {
		case len(challenge) == 0 && desc != "":
			t.Fatalf("describeChallenge(empty) = %q", desc)
		case !utf8.ValidString(desc):
			t.Fatalf("describeChallenge(%q) = %q is not valid UTF-8", challenge, desc)
		case len(desc) > maxChallengeDescription:
			t.Fatalf("describeChallenge(%d bytes) is %d bytes long", len(challenge), len(desc))
		case len(challenge) > 0 && !strings.HasPrefix(desc, "status ") && !strings.HasPrefix(desc, "server challenge "):
			t.Fatalf("describeChallenge(%q) = %q", challenge, desc)
		}
	})
}

// maxChallengeDescription bounds describeChallenge: the description ends
// up in mailboxes.last_error and in logs, and a server decides its length.
// (200 bytes of challenge quoted with %q take at most 800.)
const maxChallengeDescription = 1024

// parseXOAUTH2 reads an initial response the way a server does
// (Google's XOAUTH2 protocol page): "user=" user ^A "auth=Bearer " token
// ^A ^A.
func parseXOAUTH2(ir []byte) (user, token string, ok bool) {
	fields := strings.Split(string(ir), "\x01")
	if len(fields) != 4 || fields[2] != "" || fields[3] != "" {
		return "", "", false
	}
	user, ok1 := strings.CutPrefix(fields[0], "user=")
	token, ok2 := strings.CutPrefix(fields[1], "auth=Bearer ")
	return user, token, ok1 && ok2
}

// FuzzXOAUTH2Exchange runs the XOAUTH2 login over POP3 (AUTH, RFC 5034)
// and IMAP (AUTHENTICATE with SASL-IR) against a server whose whole answer
// to it is the fuzz input, which may echo the token ("$TOKEN") or the
// base64 response ("$IR"). The login must end within its bound without
// panicking, no error may show a piece of the token, and it may succeed
// only on the server's OK.
func FuzzXOAUTH2Exchange(f *testing.F) {
	for _, imap := range []bool{false, true} {
		f.Add([]byte(pop3AuthOK), imap)
		f.Add([]byte(imapAuthOK), imap)
		// Gmail's refusal: a challenge, then the final error.
		f.Add([]byte("+ eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==\r\n"+
			"-ERR [AUTH] Invalid credentials.\r\n$T NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\r\n"), imap)
		// Exchange Online's.
		f.Add([]byte("$T NO AUTHENTICATE failed.\r\n-ERR Authentication failure: unknown user name or bad password.\r\n"), imap)
		f.Add([]byte("* BYE Session invalidated - AccessTokenExpired\r\n"), imap)
		f.Add([]byte("$T NO [UNAVAILABLE] Temporary authentication failure\r\n-ERR [SYS/TEMP] backend down\r\n"), imap)
		// Servers that echo what they got.
		f.Add([]byte("+ \r\n-ERR Unknown command: $IR\r\n$T BAD Error in IMAP command AUTHENTICATE: $IR\r\n"), imap)
		f.Add([]byte("+ \r\n+ user="+fuzzUser+"\x01auth=Bearer $TOKEN\r\n-ERR token $TOKEN expired\r\n"), imap)
		f.Add([]byte("+ $IR\r\n+ $TOKEN\r\n$T NO [ALERT] $TOKEN\r\n"), imap)
		f.Add([]byte("$IR\r\n"), imap)
		f.Add([]byte("$T BAD Error in IMAP command AUTHENTICATE: Invalid base64 data: $IR\r\n"), imap)
		f.Add([]byte("+ $IR\r\n$T NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"), imap)
	}
	f.Fuzz(func(t *testing.T, auth []byte, imap bool) {
		var err error
		if imap {
			sc := &imapScript{auth: auth}
			var s *imapSession
			s, err = openFuzzIMAP(t, newFuzzConn([]byte(imapGreeting), true, sc.answer), &Options{CommandTimeout: fuzzIMAPTimeout})
			if s != nil {
				_ = s.Abort()
			}
			if err == nil && !bytes.Contains(bytes.ToUpper(expandMarkers(auth, "T1")), []byte("T1 OK")) {
				t.Fatalf("IMAP login succeeded without an OK: %q", auth)
			}
		} else {
			sc := &pop3Script{capa: []byte(pop3Capa), auth: auth}
			var s *pop3Session
			s, err = openFuzzPOP3(t, newFuzzConn([]byte(pop3Greeting), false, sc.answer), &Options{CommandTimeout: time.Second})
			if s != nil {
				_ = s.Abort()
			}
			requirePOP3AuthOutcome(t, auth, err)
		}
		requireNoLeak(t, "login", err)
	})
}

// requirePOP3AuthOutcome checks the result of a POP3 XOAUTH2 login whose
// server answered auth: success only on "+OK" after at least one "+", and
// certainly on "+" then "+OK".
func requirePOP3AuthOutcome(t *testing.T, auth []byte, err error) {
	t.Helper()
	// Only the lines ended by a line feed: the client fails on a cut one.
	ls := lines(expandMarkers(auth, ""))
	if len(ls) > 0 && !bytes.HasSuffix(auth, []byte("\n")) {
		ls = ls[:len(ls)-1]
	}
	isOK := func(l []byte) bool { return hasWord(string(l), "+OK") }
	isMore := func(l []byte) bool { return bytes.HasPrefix(l, []byte("+")) && !isOK(l) }
	if err == nil {
		found := false
		for i := 1; i < len(ls); i++ {
			found = found || isOK(ls[i]) && isMore(ls[0])
		}
		if !found {
			t.Fatalf("POP3 login succeeded on %q", auth)
		}
	}
	if err != nil && len(ls) >= 2 && isMore(ls[0]) && isOK(ls[1]) && len(ls[0]) < maxPOP3Line && len(ls[1]) < maxPOP3Line {
		t.Fatalf("POP3 login on %q failed: %v", auth, err)
	}
}
