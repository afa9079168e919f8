package mailbox

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReadBlock(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 100)
	tests := []struct {
		name, in, want string
		err            error
	}{
		{name: "empty", in: ".\r\n", want: ""},
		{name: "lines", in: "a\r\nb\r\n.\r\n", want: "a\r\nb\r\n"},
		{name: "unstuffed", in: "..a\r\n..\r\n...\r\n.\r\n", want: ".a\r\n.\r\n..\r\n"},
		// Only a line's first byte is looked at, however long the line.
		{name: "long line", in: long + "\r\n.." + long + "\r\n.\r\n", want: long + "\r\n." + long + "\r\n"},
		{name: "dots inside a long line", in: long + ".\r\n" + long + "\r\n.\r\n", want: long + ".\r\n" + long + "\r\n"},
		{name: "bare LF", in: "a\n..b\n.\n", want: "a\n.b\n"},
		{name: "CR inside a line", in: "a\rb\r\n.\r\n", want: "a\rb\r\n"},
		{name: "what follows is not read", in: "a\r\n.\r\n+OK next\r\n", want: "a\r\n"},
		{name: "cut mid-line", in: "a\r\nb", err: io.ErrUnexpectedEOF},
		{name: "cut after a line", in: "a\r\n", err: io.ErrUnexpectedEOF},
		{name: "cut at the dot", in: "a\r\n.", err: io.ErrUnexpectedEOF},
		{name: "cut in a long line", in: long, err: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The smallest buffer bufio allows, so long lines come in pieces.
			r := bufio.NewReaderSize(strings.NewReader(tt.in), 16)
			var got bytes.Buffer
			err := readBlock(r, &got)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got.String(), "readBlock(%q)", tt.in)
		})
	}
}

func TestReadLines(t *testing.T) {
	t.Parallel()
	r := bufio.NewReaderSize(strings.NewReader("1 a\r\n..2 b\r\nbad\r\n3 c\r\n.\r\n+OK"), 16)
	var got []string
	bad := errors.New("bad line")
	err := readLines(r, func(line string) error {
		if line == "bad" {
			return bad
		}
		got = append(got, line)
		return nil
	})
	require.ErrorIs(t, err, bad)
	require.Equal(t, []string{"1 a", ".2 b"}, got)
	rest, _ := io.ReadAll(r)
	require.Equal(t, "+OK", string(rest), "the response must be read to its end")
}

func TestReadLineTooLong(t *testing.T) {
	t.Parallel()
	r := bufio.NewReader(strings.NewReader(strings.Repeat("x", maxPOP3Line+10) + "\r\n"))
	_, err := readLine(r)
	require.ErrorContains(t, err, "line longer than")
}

func TestParseReply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want pop3Reply
		err  bool
	}{
		{in: "+OK", want: pop3Reply{replyOK, ""}},
		{in: "+OK 2 320", want: pop3Reply{replyOK, "2 320"}},
		{in: "+ok done", want: pop3Reply{replyOK, "done"}},
		{in: "-ERR [IN-USE] locked", want: pop3Reply{replyErr, "[IN-USE] locked"}},
		{in: "-ERR", want: pop3Reply{replyErr, ""}},
		{in: "+", want: pop3Reply{replyMore, ""}},
		{in: "+ ", want: pop3Reply{replyMore, ""}},
		{in: "+ eyJzdGF0dXMiOiI0MDEifQ==", want: pop3Reply{replyMore, "eyJzdGF0dXMiOiI0MDEifQ=="}},
		{in: "* OK IMAP4rev1", err: true},
		{in: "", err: true},
		{in: "-ERRATIC", err: true},
	}
	for _, tt := range tests {
		got, err := parseReply(tt.in)
		if tt.err {
			require.Error(t, err, "parseReply(%q)", tt.in)
			continue
		}
		require.NoError(t, err, "parseReply(%q)", tt.in)
		require.Equal(t, tt.want, got, "parseReply(%q)", tt.in)
	}
}

func TestPOP3ErrorCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text      string
		code      string
		temporary bool
	}{
		{"[IN-USE] Mailbox is locked", "IN-USE", true},
		{"[LOGIN-DELAY] wait", "LOGIN-DELAY", true},
		{"[SYS/TEMP] try later", "SYS/TEMP", true},
		{"[sys/temp/quota] try later", "SYS/TEMP/QUOTA", true},
		{"[SYS/PERM] broken", "SYS/PERM", false},
		{"[AUTH] Authentication failed.", "AUTH", false},
		{"no such message", "", false},
		{"[unclosed", "", false},
	}
	for _, tt := range tests {
		e := &pop3Error{cmd: "PASS", text: tt.text}
		require.Equal(t, tt.code, e.code(), "code(%q)", tt.text)
		require.Equal(t, tt.temporary, e.temporary(), "temporary(%q)", tt.text)
	}
}

func TestParseUIDLLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		num  uint32
		uidl string
		err  bool
	}{
		{in: "1 whqtswO00WBw418f9t5JxYwZ", num: 1, uidl: "whqtswO00WBw418f9t5JxYwZ"},
		{in: "12 000001a3.x!~", num: 12, uidl: "000001a3.x!~"},
		{in: "3 " + strings.Repeat("u", 100), num: 3, uidl: strings.Repeat("u", 100)},
		{in: "0 abc", err: true},
		{in: "x abc", err: true},
		{in: "1", err: true},
		{in: "1 a b", err: true},
		{in: "1 caf\xc3\xa9", err: true},
	}
	for _, tt := range tests {
		num, uidl, err := parseUIDLLine(tt.in)
		if tt.err {
			require.Error(t, err, "parseUIDLLine(%q)", tt.in)
			continue
		}
		require.NoError(t, err, "parseUIDLLine(%q)", tt.in)
		require.Equal(t, tt.num, num)
		require.Equal(t, tt.uidl, uidl)
	}
}

func TestRedactPOP3Lines(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	r := &redactor{out: &out}
	ir := "dXNlcj1zdXBwb3J0QGV4YW1wbGUuY29tAWF1dGg9QmVhcmVyIGdvb2QtdG9rZW4BAQ=="
	for _, l := range []string{"AUTH XOAUTH2", "+ ", ir, "+OK Logged in.", "USER support@example.com", "PASS hunter2", "RETR 1"} {
		_, _ = r.Write([]byte(l + "\r\n"))
	}
	require.Equal(t, "AUTH XOAUTH2\n+ \n[redacted]\n+OK Logged in.\nUSER [redacted]\nPASS [redacted]\nRETR 1\n", out.String())
}
