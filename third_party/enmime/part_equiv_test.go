package enmime

// fetcher: an end-to-end differential test of the patch in part.go (see the top of that
// file): messages are parsed with the patched decodeContent and readPartContent, and with
// enmime v2.3.0's quoted-printable decoding and io.ReadAll put back in their place, with
// several parser options and read errors injected along the way, and every part must come
// out the same.

import (
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/jhillyerd/enmime/v2/internal/coding"
)

// upstreamDecoding puts enmime v2.3.0's decoding in place of the patch's until the
// returned function is called.
func upstreamDecoding() (restore func()) {
	qp, readAll := newQPDecoder, readAllPart
	newQPDecoder = func(r io.Reader) io.Reader { return quotedprintable.NewReader(coding.NewQPCleaner(r)) }
	readAllPart = io.ReadAll
	return func() { newQPDecoder, readAllPart = qp, readAll }
}

// partView is what a part holds after parsing, but for its links to other parts.
type partView struct {
	PartID, ContentType, Disposition, FileName, Charset, OrigCharset, ContentID string
	Boundary                                                                    string
	Header                                                                      map[string][]string
	ContentTypeParams                                                           map[string]string
	Errors                                                                      []string
	Content, Epilogue                                                           []byte
	ContentIsNil                                                                bool
}

// flattenParts lists the parts of the tree at root, depth first.
func flattenParts(root *Part) []partView {
	var out []partView
	var walk func(p *Part)
	walk = func(p *Part) {
		for ; p != nil; p = p.NextSibling {
			v := partView{
				PartID: p.PartID, ContentType: p.ContentType, Disposition: p.Disposition,
				FileName: p.FileName, Charset: p.Charset, OrigCharset: p.OrigCharset,
				ContentID: p.ContentID, Boundary: p.Boundary, Header: p.Header,
				ContentTypeParams: p.ContentTypeParams, Content: p.Content, Epilogue: p.Epilogue,
				ContentIsNil: p.Content == nil,
			}
			for _, e := range p.Errors {
				v.Errors = append(v.Errors, e.Error())
			}
			out = append(out, v)
			walk(p.FirstChild)
		}
	}
	walk(root)
	return out
}

var errPartEquivInjected = errors.New("injected read error")

// failingReader returns data up to failAt, then errPartEquivInjected once, then the rest.
type failingReader struct {
	data   string
	off    int
	failAt int // -1: never
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.failAt >= 0 && r.off == r.failAt {
		r.failAt = -1
		return 0, errPartEquivInjected
	}
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	end := len(r.data)
	if r.failAt > r.off {
		end = r.failAt
	}
	n := copy(p, r.data[r.off:end])
	r.off += n
	return n, nil
}

// parseBoth parses msg with parser, the patched way and upstream's, and returns a
// description of the first difference, or "".
func parseBoth(parser *Parser, msg string, failAt int) string {
	parse := func() (string, []partView) {
		root, err := parser.ReadParts(&failingReader{data: msg, failAt: failAt})
		if err != nil {
			return err.Error(), nil
		}
		return "", flattenParts(root)
	}
	pErr, pParts := parse()
	restore := upstreamDecoding()
	oErr, oParts := parse()
	restore()
	if pErr != oErr {
		return fmt.Sprintf("ReadParts error %q; upstream: %q", pErr, oErr)
	}
	if len(pParts) != len(oParts) {
		return fmt.Sprintf("%d parts; upstream: %d", len(pParts), len(oParts))
	}
	for i := range pParts {
		if !reflect.DeepEqual(pParts[i], oParts[i]) {
			return fmt.Sprintf("part %d:\n%+v\nupstream:\n%+v", i, pParts[i], oParts[i])
		}
	}
	return ""
}

// qpPartBodies are quoted-printable bodies that take QPDecoder's paths: decoded in place,
// and given to the chain (long lines, '=' at the end, a soft line break QPCleaner inserts).
var qpPartBodies = []string{
	"Gr=C3=BC=C3=9Fe aus K=C3=B6ln, voil=C3=A0 l=E2=80=99=C3=A9t=C3=A9.=\r\nSoft break, then more.   \r\nTrailing spaces dropped.\t\r\n",
	"<p style=3D\"margin:0\">caf=c3=a9 =ZZ = x=\r\n</p>\r\n\xe9\x00\x7f raw bytes\r\n",
	"bare LF lines \nand trailing white space  \n=\nend",
	"ends with an equals sign=",
	"ends with equals CR=\r",
	strings.Repeat("long line ", 120) + "\r\n" + strings.Repeat("\xe9", 400) + " \r\n",
	strings.Repeat("x", 5000),
	strings.Repeat("line of text\r\n", 400),
	"",
}

// partEquivMessages are messages with quoted-printable parts in each place: the whole
// message, text parts of several charsets, a part that is not text.
func partEquivMessages() map[string]string {
	msgs := map[string]string{}
	for i, body := range qpPartBodies {
		msgs[fmt.Sprintf("single/%d", i)] = "From: a@example.com\r\nSubject: test\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + body
		for _, ct := range []string{"text/plain; charset=utf-8", "text/html; charset=\"UTF-8\"", "text/plain; charset=us-ascii",
			"text/plain; charset=iso-8859-1", "text/plain", "application/octet-stream"} {
			msgs[fmt.Sprintf("multipart/%d/%s", i, ct)] = "From: a@example.com\r\nMIME-Version: 1.0\r\n" +
				"Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\n" +
				"Content-Type: " + ct + "\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + body +
				"\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\n" +
				"<b>" + body + "</b>\r\n--b1--\r\nepilogue\r\n"
		}
	}
	return msgs
}

// partEquivParsers are the parser options compared.
func partEquivParsers() map[string]*Parser {
	return map[string]*Parser{
		"default":         NewParser(),
		"skip malformed":  NewParser(SkipMalformedParts(true)),
		"allow any error": NewParser(SetReadPartErrorPolicy(func(*Part, error) bool { return true })),
		"no detection":    NewParser(DisableCharacterDetection(true)),
		"raw content":     NewParser(RawContent(true)),
	}
}

func TestReadPartsMatchesUpstream(t *testing.T) {
	msgs := partEquivMessages()
	files, err := filepath.Glob("testdata/*/*.raw")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test messages: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		msgs[f] = string(b)
	}
	for name, msg := range msgs {
		for pname, parser := range partEquivParsers() {
			// A read error at offsets through the message, and none.
			for failAt := 0; failAt <= len(msg); failAt += 1 + len(msg)/40 {
				if diff := parseBoth(parser, msg, failAt); diff != "" {
					t.Fatalf("%s, parser %s, read error at %d: %s", name, pname, failAt, diff)
				}
			}
			if diff := parseBoth(parser, msg, -1); diff != "" {
				t.Fatalf("%s, parser %s: %s", name, pname, diff)
			}
		}
	}
}

// benchQPMessage is an Outlook-like mail of about 20 KB: multipart/alternative with a
// text/plain and a text/html part, both quoted-printable, utf-8.
func benchQPMessage() string {
	var text, html strings.Builder
	html.WriteString("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"></head>\n" +
		"<body lang=\"DE\" link=\"#0563C1\"><div class=\"WordSection1\">\n")
	for i := range 45 {
		fmt.Fprintf(&text, "> Line %d of the quoted conversation: Grüße aus Köln – we’ll send the parts soon.\n", i)
		fmt.Fprintf(&html, "<p class=\"MsoNormal\"><span style=\"font-family:&quot;Arial&quot;,sans-serif;color:#1F497D\">"+
			"Line %d of the quoted conversation: Grüße aus Köln – we’ll send the parts soon.<o:p></o:p></span></p>\n", i)
	}
	html.WriteString("</div></body></html>\n")
	qp := func(s string) string {
		var b strings.Builder
		w := quotedprintable.NewWriter(&b)
		_, _ = w.Write([]byte(strings.ReplaceAll(s, "\n", "\r\n")))
		_ = w.Close()
		return b.String()
	}
	return "From: a@example.com\r\nTo: b@example.org\r\nSubject: Re: Order\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=\"_000_b_\"\r\n\r\n--_000_b_\r\n" +
		"Content-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		qp(text.String()) + "\r\n--_000_b_\r\n" +
		"Content-Type: text/html; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		qp(html.String()) + "\r\n--_000_b_--\r\n"
}

// BenchmarkReadPartsQP parses benchQPMessage with fetcher's parser options, the way
// enmime v2.3.0 decoded it ("upstream") and with the patch.
func BenchmarkReadPartsQP(b *testing.B) {
	msg := benchQPMessage()
	parser := NewParser(DisableCharacterDetection(true), SkipMalformedParts(true),
		SetReadPartErrorPolicy(AllowCorruptTextPartErrorPolicy))
	for _, side := range []string{"upstream", "patched"} {
		b.Run(side, func(b *testing.B) {
			if side == "upstream" {
				defer upstreamDecoding()()
			}
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parser.ReadParts(strings.NewReader(msg)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
