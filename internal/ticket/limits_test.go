package ticket

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// limitHeader is the header of every generated message: what threading
// needs must survive any limit.
const limitHeader = "From: Customer <c@example.org>\r\nTo: support@example.com\r\nSubject: Printer on fire\r\n" +
	"Message-ID: <lim@example.org>\r\nIn-Reply-To: <prev@example.org>\r\n" +
	"References: <first@example.org> <prev@example.org>\r\nDate: Mon, 16 Nov 2026 09:00:00 +0100\r\nMIME-Version: 1.0\r\n"

// withHeaderBytes is a message whose header is n bytes, padded by a field
// placed before the main ones.
func withHeaderBytes(n int) string {
	pad := n - len(limitHeader) - len("X-Pad: \r\n")
	return "X-Pad: " + strings.Repeat("x", pad) + "\r\n" + limitHeader + "\r\nHello\r\n"
}

// withHeaderFields is a message whose header has n fields, the extra ones
// before the main ones.
func withHeaderFields(n int) string {
	var b strings.Builder
	for i := range n - strings.Count(limitHeader, "\r\n") {
		fmt.Fprintf(&b, "X-Field-%d: %d\r\n", i, i)
	}
	return b.String() + limitHeader + "\r\nHello\r\n"
}

// withDepth is a message whose multiparts nest n deep.
func withDepth(n int) string {
	return limitHeader + strings.TrimPrefix(nested(n), "Subject: nested\r\n")
}

// withParts is a multipart/mixed message of n text parts.
func withParts(n int) string {
	return limitHeader + flat(n)
}

// withContinuedDepth is withDepth with RFC 2231 continued boundaries.
func withContinuedDepth(n int) string {
	return limitHeader + strings.TrimPrefix(nestedAs(n, continuedBoundary, true), "Subject: nested\r\n")
}

// withContinuedParts is withParts with an RFC 2231 continued boundary.
func withContinuedParts(n int) string {
	return limitHeader + flatAs(n, `boundary*0="x"; boundary*1="y"`, "xy")
}

// withAttachments is a message with a text body and n small attachments.
func withAttachments(n int) string {
	var b strings.Builder
	b.WriteString(limitHeader + "Content-Type: multipart/mixed; boundary=a\r\n\r\n" +
		"--a\r\nContent-Type: text/plain\r\n\r\nHello\r\n")
	for i := range n {
		fmt.Fprintf(&b, "--a\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=f%d.pdf\r\n"+
			"Content-Transfer-Encoding: base64\r\n\r\n%s\r\n", i, base64.StdEncoding.EncodeToString([]byte(fmt.Sprint("file ", i))))
	}
	return b.String() + "--a--\r\n"
}

// requireHeaderRead checks that a message past a limit kept what threading
// and staff need from its header.
func requireHeaderRead(t *testing.T, m *Message) {
	t.Helper()
	require.Equal(t, "<lim@example.org>", m.MessageID)
	require.Equal(t, "c@example.org", m.FromEmail)
	require.Equal(t, "Printer on fire", m.Subject)
	require.Equal(t, []string{"<prev@example.org>", "<first@example.org>"}, m.ReferencedIDs())
	require.False(t, m.SentAt.IsZero())
}

// TestLimits: for each limit, a message at it parses whole and one just
// past it gives the named problem, its figure, and the header.
func TestLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		limit    int
		lim      func(n int) Limits
		build    func(n int) string
		wantNote string // for build(limit+1)
		wantBody string // in BodyText, at the limit and (empty for none) past it
		pastBody string
	}{
		{"header bytes", 64 << 10, func(n int) Limits { return Limits{HeaderBytes: int64(n)} }, withHeaderBytes,
			"over the limit FETCHER_MAX_HEADER_BYTES=65536: the header is 65537 bytes; only its main fields were read", "Hello", ""},
		{"header fields", 200, func(n int) Limits { return Limits{HeaderFields: n} }, withHeaderFields,
			"over the limit FETCHER_MAX_HEADER_FIELDS=200: the header has 201 fields; only its main fields were read", "Hello", ""},
		{"MIME depth", 8, func(n int) Limits { return Limits{MIMEDepth: n} }, withDepth,
			"over the limit FETCHER_MAX_MIME_DEPTH=8: MIME parts nest at least 9 deep; the body is kept as plain text", "innermost", "innermost"},
		{"MIME depth default", DefaultMIMEDepth, func(int) Limits { return Limits{} }, withDepth,
			"over the limit FETCHER_MAX_MIME_DEPTH=12: MIME parts nest at least 13 deep", "innermost", "innermost"},
		{"MIME parts", 100, func(n int) Limits { return Limits{MIMEParts: n} }, withParts,
			"over the limit FETCHER_MAX_MIME_PARTS=100: the message has 101 MIME parts; the body is kept as plain text", "part", "part"},
		{"MIME depth RFC 2231", 8, func(n int) Limits { return Limits{MIMEDepth: n} }, withContinuedDepth,
			"over the limit FETCHER_MAX_MIME_DEPTH=8: MIME parts nest at least 9 deep; the body is kept as plain text", "innermost", "innermost"},
		{"MIME parts RFC 2231", 100, func(n int) Limits { return Limits{MIMEParts: n} }, withContinuedParts,
			"over the limit FETCHER_MAX_MIME_PARTS=100: the message has 101 MIME parts; the body is kept as plain text", "part", "part"},
		{"attachments", 20, func(n int) Limits { return Limits{Attachments: n} }, withAttachments,
			"over the limit FETCHER_MAX_ATTACHMENTS=20: the message has 21 attachments; only the first 20 were kept", "Hello", "Hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lim := tt.lim(tt.limit)
			at := ParseWith([]byte(tt.build(tt.limit)), lim)
			require.Empty(t, at.ParseError, "at the limit")
			require.Contains(t, at.BodyText, tt.wantBody)
			requireHeaderRead(t, at)

			past := ParseWith([]byte(tt.build(tt.limit+1)), lim)
			require.True(t, strings.HasPrefix(past.ParseError, tt.wantNote), "ParseError = %q", past.ParseError)
			requireHeaderRead(t, past)
			requireClean(t, past)
			if tt.pastBody == "" {
				require.Empty(t, past.BodyText)
				require.Empty(t, past.Attachments)
			} else {
				require.Contains(t, past.BodyText, tt.pastBody)
			}
		})
	}
}

// TestRFC2231BoundaryParses: an ordinary message whose boundary is
// declared in RFC 2231 continuations, within the limits, parses whole.
func TestRFC2231BoundaryParses(t *testing.T) {
	t.Parallel()
	raw := strings.ReplaceAll(withAttachments(3), "--a", "--a2231")
	raw = strings.Replace(raw, "boundary=a\r\n", "boundary*0*=us-ascii''a;\r\n boundary*1=\"2231\"\r\n", 1)
	m := Parse([]byte(raw))
	require.Empty(t, m.ParseError)
	require.Equal(t, "Hello", m.BodyText)
	require.Len(t, m.Attachments, 3)
	for i, a := range m.Attachments {
		require.Equal(t, fmt.Sprintf("f%d.pdf", i), a.Filename)
		require.Equal(t, fmt.Sprint("file ", i), string(a.Data))
	}
	requireHeaderRead(t, m)
}

func TestAttachmentLimitKeepsTheFirst(t *testing.T) {
	t.Parallel()
	m := ParseWith([]byte(withAttachments(30)), Limits{Attachments: 20})
	require.Len(t, m.Attachments, 20)
	require.Equal(t, "f0.pdf", m.Attachments[0].Filename)
	require.Equal(t, "f19.pdf", m.Attachments[19].Filename)
}

// TestHeaderLimitSkipsHugeFields: a main field too large for the limit is
// left out rather than cut, and the others are still read.
func TestHeaderLimitSkipsHugeFields(t *testing.T) {
	t.Parallel()
	raw := "To: " + strings.Repeat("someone@example.org, ", 5000) + "x@example.org\r\n" + limitHeader + "\r\nHello\r\n"
	m := ParseWith([]byte(raw), Limits{HeaderBytes: 64 << 10})
	require.Contains(t, m.ParseError, "FETCHER_MAX_HEADER_BYTES")
	requireHeaderRead(t, m)
	require.Equal(t, "support@example.com", m.To, "the second To field, which fits, is read")
}

// withPDF is a message with a text body and a base64 PDF of n bytes (a
// multiple of 3, so that the estimate before decoding is exact).
func withPDF(n int) (raw []byte, body string) {
	body = "Scan attached." // the line break before a delimiter is part of it
	data := bytes.Repeat([]byte("%PDF"), n/4+1)[:n]
	return []byte(limitHeader + "Content-Type: multipart/mixed; boundary=a\r\n\r\n" +
		"--a\r\nContent-Type: text/plain\r\n\r\n" + body + "\r\n" +
		"--a\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=scan.pdf\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + wrap76(base64.StdEncoding.EncodeToString(data)) + "--a--\r\n"), body
}

func wrap76(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	return b.String() + s + "\r\n"
}

// TestDecodedLimit: bodies and attachments are counted together; a
// message whose content is exactly the limit parses whole. Past it, a
// large message is cut before decoding, and text that grows when it is
// converted to UTF-8 is caught after.
func TestDecodedLimit(t *testing.T) {
	t.Parallel()
	const size = 30_000
	pdf, body := withPDF(size)
	exact := int64(len(body) + size)
	latin1 := []byte(limitHeader + "Content-Type: text/plain; charset=iso-8859-1\r\n\r\n" + strings.Repeat("\xfc", 100) + "\r\n")
	tests := []struct {
		name            string
		raw             []byte
		limit           int64
		wantNote        string
		wantBody        string
		wantAttachments int
	}{
		{"at the limit", pdf, exact, "", body, 1},
		{"one byte past", pdf, exact - 1, fmt.Sprintf("over the limit FETCHER_MAX_DECODED_BYTES=%d: its parts decode to about %d bytes; parts past the limit were not kept", exact-1, exact), body, 0},
		{"grown in UTF-8", latin1, 150, "over the limit FETCHER_MAX_DECODED_BYTES=150: its parts decode to 201 bytes; parts past the limit were not kept", strings.Repeat("ü", 75), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := ParseWith(tt.raw, Limits{DecodedBytes: tt.limit})
			require.Equal(t, tt.wantNote, m.ParseError)
			require.Equal(t, tt.wantBody, m.BodyText)
			require.Len(t, m.Attachments, tt.wantAttachments)
			requireHeaderRead(t, m)
		})
	}
}

// manyParts is a message with a text body and n base64 attachments of
// size bytes each.
func manyParts(n, size int) []byte {
	data := wrap76(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xA5}, size)))
	var b bytes.Buffer
	b.WriteString(limitHeader + "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\nHello\r\n")
	for i := range n {
		fmt.Fprintf(&b, "--a\r\nContent-Type: image/jpeg\r\nContent-Disposition: attachment; filename=p%d.jpg\r\n"+
			"Content-Transfer-Encoding: base64\r\n\r\n%s", i, data)
	}
	b.WriteString("--a--\r\n")
	return b.Bytes()
}

// allocated returns the bytes f allocates. It reads process-wide
// statistics, so callers must not run in parallel with other tests.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestManyLargePartsStopEarly: parts past the decoded limit are never
// decoded, so memory stays near the limit whatever the message holds.
// Not parallel: it measures allocation.
func TestManyLargePartsStopEarly(t *testing.T) {
	raw := manyParts(20, 300_000) // 6 MB decoded, 8 MB as sent
	const limit = 1 << 20
	var m *Message
	limited := allocated(func() { m = ParseWith(raw, Limits{DecodedBytes: limit}) })
	require.True(t, strings.HasPrefix(m.ParseError, "over the limit FETCHER_MAX_DECODED_BYTES=1048576: its parts decode to about 6000005 bytes"), "ParseError = %q", m.ParseError)
	require.Equal(t, "Hello", m.BodyText)
	require.Len(t, m.Attachments, 3, "the parts before the limit are kept")
	requireHeaderRead(t, m)
	whole := allocated(func() { m = Parse(raw) })
	require.Len(t, m.Attachments, 20)
	require.Less(t, limited, uint64(12*limit), "allocated %d bytes with the limit, %d without", limited, whole)
	require.Less(t, limited*4, whole, "allocated %d bytes with the limit, %d without", limited, whole)
	t.Logf("allocated %d bytes with the limit, %d without", limited, whole)
}

// rtfBombTNEF is a winmail.dat whose compressed RTF body is n groups of a
// control byte and eight 17-byte references: 17 bytes that expand to 136,
// 8 times over. Each reference points past the decoder's write position,
// which a reference may not name (MS-OXRTFCP: that ends the stream).
func rtfBombTNEF(n int) []byte {
	const prebufLen, dictMask = 207, 4095
	var body []byte
	write := prebufLen
	for range n {
		body = append(body, 0xFF)
		for range 8 {
			ref := ((write+1)&dictMask)<<4 | 0xF
			body = append(body, byte(ref>>8), byte(ref))
			write = (write + 17) & dictMask
		}
	}
	le := binary.LittleEndian
	rtf := le.AppendUint32(nil, uint32(len(body)+12))
	rtf = le.AppendUint32(rtf, uint32(n*136))
	rtf = le.AppendUint32(rtf, 0x75465A4C) // "LZFu"
	rtf = le.AppendUint32(rtf, ^crc32.Update(^uint32(0), crc32.IEEETable, body))
	rtf = append(rtf, body...)

	props := le.AppendUint32(nil, 1)                  // one property
	props = le.AppendUint32(props, 0x1009<<16|0x0102) // PR_RTF_COMPRESSED, PT_BINARY
	props = le.AppendUint32(props, 1)                 // one value
	props = le.AppendUint32(props, uint32(len(rtf)))  // its length
	props = append(props, rtf...)
	props = append(props, make([]byte, (4-len(rtf)%4)%4)...)

	var sum uint16
	for _, c := range props {
		sum += uint16(c)
	}
	stream := le.AppendUint32(nil, 0x223E9F78) // signature
	stream = le.AppendUint16(stream, 1)        // legacy key
	stream = append(stream, 1)                 // message level
	stream = le.AppendUint32(stream, 0x00069003)
	stream = le.AppendUint32(stream, uint32(len(props)))
	stream = append(stream, props...)
	return le.AppendUint16(stream, sum)
}

// withWinmail is an Outlook "rich text" message: winmail.dat only.
func withWinmail(tnef []byte) []byte {
	return []byte(limitHeader + "Content-Type: multipart/mixed; boundary=a\r\n\r\n" +
		"--a\r\nContent-Type: application/ms-tnef; name=winmail.dat\r\nContent-Disposition: attachment; filename=winmail.dat\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + wrap76(base64.StdEncoding.EncodeToString(tnef)) + "--a--\r\n")
}

// TestTNEFBombStopsEarly: a winmail.dat whose compressed RTF would expand
// to 13.6 MB stops at the decoded limit instead, and is kept as it is.
// Not parallel: it measures allocation.
func TestTNEFBombStopsEarly(t *testing.T) {
	bomb := rtfBombTNEF(100_000) // 1.7 MB
	raw := withWinmail(bomb)
	const limit = 2 << 20
	var m *Message
	limited := allocated(func() { m = ParseWith(raw, Limits{DecodedBytes: limit}) })
	require.True(t, strings.HasPrefix(m.ParseError, "over the limit FETCHER_MAX_DECODED_BYTES=2097152: its parts decode to more than 2097152 bytes"), "ParseError = %q", m.ParseError)
	require.Contains(t, m.ParseError, "decoded size limit reached")
	require.Len(t, m.Attachments, 1)
	require.Equal(t, "winmail.dat", m.Attachments[0].Filename)
	require.Equal(t, bomb, m.Attachments[0].Data, "kept as sent")
	requireHeaderRead(t, m)

	whole := allocated(func() { m = Parse(raw) })
	require.Empty(t, m.ParseError, "within the default limit the same mail unpacks")
	require.Less(t, limited, uint64(6*limit), "allocated %d bytes with the limit, %d without", limited, whole)
	require.Less(t, limited*2, whole, "allocated %d bytes with the limit, %d without", limited, whole)
	t.Logf("allocated %d bytes with the limit, %d without", limited, whole)
}

// TestTNEFAttachmentsCount: the files of a winmail.dat count toward the
// attachment limit.
func TestTNEFAttachmentsCount(t *testing.T) {
	t.Parallel()
	m := &Message{Attachments: []Attachment{{Filename: "a.pdf"}, {
		Filename: "winmail.dat", ContentType: "application/ms-tnef", Data: tnefWithFiles(5),
	}}}
	var p problems
	unpackTNEF(m, Limits{Attachments: 4}.withDefaults(), newBudget(DefaultDecodedBytes), &p)
	require.Len(t, m.Attachments, 4)
	require.Contains(t, p.String(), "over the limit FETCHER_MAX_ATTACHMENTS=4: the message has more than 4 attachments; only the first 4 were kept")
}

// tnefWithFiles is a winmail.dat holding n one-byte files.
func tnefWithFiles(n int) []byte {
	le := binary.LittleEndian
	attr := func(b []byte, id uint32, data []byte) []byte {
		var sum uint16
		for _, c := range data {
			sum += uint16(c)
		}
		b = append(b, 2) // attachment level
		b = le.AppendUint32(b, id)
		b = le.AppendUint32(b, uint32(len(data)))
		return le.AppendUint16(append(b, data...), sum)
	}
	stream := le.AppendUint16(le.AppendUint32(nil, 0x223E9F78), 1)
	for range n {
		stream = attr(stream, 0x00069002, []byte{1, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0}) // attAttachRendData
		stream = attr(stream, 0x0006800F, []byte("x"))                                                  // attAttachData
	}
	return stream
}
