package bench

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"html"
	"math"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Domain is the domain of the benchmark's mailboxes and Message-IDs.
const Domain = "bench.fetcher.example"

// Realistic sizes: a log-normal distribution around a median of about 20 KB,
// nine messages in ten between 8 and 50 KB, clamped to 3 KB – 300 KB.
const (
	realisticMedian = 20 * KB
	realisticSigma  = 0.55
	realisticMin    = 3 * KB
	realisticMax    = 300 * KB
	// attachmentShare of messages carry a small base64 attachment, and
	// replyShare answer an earlier message of the same mailbox.
	attachmentShare = 0.2
	replyShare      = 0.25
)

// Generator makes the benchmark's messages: real MIME as mail clients send
// it (CRLF line ends, a text/plain and a text/html alternative in
// quoted-printable, some with a small base64 attachment in 76-column lines,
// some replies carrying In-Reply-To and References), each with a unique
// Message-ID. The same seed makes the same bytes.
type Generator struct {
	Seed uint64
	// Fixed, when set, makes every ordinary message about this many bytes;
	// 0 draws realistic sizes.
	Fixed int64
}

// Message is one generated message.
type Message struct {
	ID  string // Message-ID, with angle brackets
	Raw []byte
}

// MessageID is the Message-ID of message i of mailbox mb.
func (g Generator) MessageID(mb, i int) string {
	return fmt.Sprintf("<m%d.%d.s%d@%s>", mb, i, g.Seed, Domain)
}

// rng is a random stream for one purpose of one message.
func (g Generator) rng(purpose uint64, mb, i int) *rand.Rand {
	return rand.New(rand.NewPCG(g.Seed^(purpose*0x9e3779b97f4a7c15), uint64(mb)<<32|uint64(uint32(i))))
}

// Purposes of the random streams: each part of a message draws from its
// own, so that a message's subject can be recomputed for its replies and
// its text grown without changing anything else.
const (
	streamShape uint64 = iota + 1
	streamSubject
	streamText
	streamQuote
	streamData
)

// Size is the size message i of mailbox mb is built to (Fixed, or drawn
// from the realistic distribution).
func (g Generator) Size(mb, i int) int64 {
	if g.Fixed > 0 {
		return g.Fixed
	}
	return realisticSize(g.rng(streamShape, mb, i))
}

func realisticSize(r *rand.Rand) int64 {
	s := math.Exp(math.Log(realisticMedian) + realisticSigma*r.NormFloat64())
	return int64(min(max(s, realisticMin), realisticMax))
}

// shape is what a message is made of, drawn before its text.
type shape struct {
	size       int64
	attachment int64 // bytes of attachment data before encoding; 0 for none
	attachKind int
	parent     int // index of the message replied to; -1 for none
}

func (g Generator) shape(mb, i int) shape {
	r := g.rng(streamShape, mb, i)
	s := shape{parent: -1}
	if g.Fixed > 0 {
		s.size = g.Fixed
	} else {
		s.size = realisticSize(r)
	}
	if r.Float64() < attachmentShare && s.size >= 6*KB {
		// The attachment takes 15 to 45 % of the message, base64 included.
		share := 0.15 + 0.3*r.Float64()
		s.attachment = int64(float64(s.size)*share) * 57 / 78
		s.attachKind = r.IntN(len(attachKinds))
	}
	if i > 0 && r.Float64() < replyShare {
		s.parent = r.IntN(i)
	}
	return s
}

// Message builds message i of mailbox mb.
func (g Generator) Message(mb, i int) Message {
	s := g.shape(mb, i)
	return g.build(mb, i, s)
}

// Large builds message i of mailbox mb as a message of about size bytes,
// nearly all of it one base64 attachment.
func (g Generator) Large(mb, i int, size int64) Message {
	s := shape{size: size, parent: -1, attachKind: 0}
	s.attachment = max(size-6*KB, KB) * 57 / 78
	return g.build(mb, i, s)
}

// build makes the message twice: once to measure what the headers and
// markup take, then with the text sized to meet s.size.
func (g Generator) build(mb, i int, s shape) Message {
	p := g.parts(mb, i, s)
	textLen := max(int((s.size-int64(base64Len(s.attachment))-3000)*10/24), 200)
	raw := p.render(textLen)
	// The text and its HTML copy grow by about 2.4 bytes per character of
	// text: correct the guess a few times.
	for range 3 {
		diff := s.size - int64(len(raw))
		if diff < 100 && diff > -100 || textLen == 200 && diff < 0 {
			break
		}
		textLen = max(textLen+int(diff*10/24), 200)
		raw = p.render(textLen)
	}
	return Message{ID: g.MessageID(mb, i), Raw: raw}
}

// base64Len is how long n bytes are in base64 lines of 76 characters
// with CRLF.
func base64Len(n int64) int {
	chars := (n + 2) / 3 * 4
	return int(chars + (chars+75)/76*2)
}

// parts holds everything of a message but the length of its text.
type parts struct {
	g        Generator
	mb, i    int
	s        shape
	header   string
	boundary string
	attach   []byte
}

var (
	firstNames = []string{"Anna", "Lukas", "Sofia", "Jonas", "Emma", "Noah", "Lea", "Elias", "Marie", "Paul",
		"Olivia", "James", "Chloé", "Mateo", "Zoë", "Björn", "Åsa", "José", "Inès", "Kenji"}
	lastNames = []string{"Schmidt", "Müller", "García", "Dubois", "Rossi", "Nowak", "Johansson", "Smith",
		"O'Brien", "Fischer", "Weber", "Lefèvre", "Novák", "Tanaka", "Öztürk", "Jensen"}
	companies = []string{"contoso.example", "fabrikam.example", "northwind.example", "adatum.example",
		"tailspin.example", "wingtip.example", "litware.example", "proseware.example"}
	topics = []string{"Drucker im Büro defekt", "Invoice 2026-%04d overdue", "VPN connection drops every hour",
		"Cannot log in to the portal", "Order #%06d not delivered", "Bitte um Rückruf", "Password reset request",
		"Problème de facturation", "Laptop screen flickers", "Access to shared folder", "Refund for order %06d",
		"New employee onboarding: accounts", "Meeting room display broken", "Lieferung unvollständig",
		"Error 0x%04X when printing", "Upgrade of licence"}
	words = strings.Fields(`the a to and of in is for on that with this we you it be are have please
		can our your will not as at from by an or was but if do all would there their about when which
		order invoice printer account password screen office team customer request issue update attached
		thanks regards morning afternoon still again yesterday today tomorrow since error message
		working broken delivery shipment number reference ticket support help urgent soon possible
		Rechnung Lieferung Bestellung bitte danke facture merci`)
	// accented words are one word in twenty: enough for the quoted-printable
	// and charset work of European mail.
	accented    = strings.Fields(`über für können Grüße Straße größer schön réponse déjà très problème été`)
	attachKinds = []struct{ name, ctype, magic string }{
		{"scan-%d.pdf", "application/pdf", "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"},
		{"screenshot-%d.png", "image/png", "\x89PNG\r\n\x1a\n"},
		{"export-%d.csv", "text/csv", ""},
		{"report-%d.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "PK\x03\x04"},
	}
)

// Subject is the subject line of message i of mailbox mb, as read (not
// encoded), replies included.
func (g Generator) Subject(mb, i int) string {
	s := g.shape(mb, i)
	if s.parent >= 0 {
		return "Re: " + strings.TrimPrefix(g.Subject(mb, s.parent), "Re: ")
	}
	r := g.rng(streamSubject, mb, i)
	t := topics[r.IntN(len(topics))]
	if strings.Contains(t, "%") {
		t = fmt.Sprintf(t, r.IntN(60000))
	}
	return t
}

func (g Generator) parts(mb, i int, s shape) *parts {
	r := g.rng(streamSubject, mb, i)
	p := &parts{g: g, mb: mb, i: i, s: s}
	first, last := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
	company := companies[r.IntN(len(companies))]
	addr := strings.ToLower(asciiOnly(first) + "." + asciiOnly(last) + "@" + company)
	date := time.Date(2026, 1, 5, 8, 0, 0, 0, time.FixedZone("CET", 3600)).Add(time.Duration(i*7+mb) * time.Minute)
	p.boundary = fmt.Sprintf("----=_Part_%d_%d.%d", mb, i, r.Uint32())
	var h strings.Builder
	hdr := func(name, value string) { h.WriteString(name + ": " + value + "\r\n") }
	hdr("Return-Path", "<"+addr+">")
	hdr("Received", fmt.Sprintf("from mail-%s.outbound.%s (mail-%s.outbound.%s [203.0.113.%d])\r\n\tby mx1.%s with ESMTPS id %016x\r\n\tfor <support+%d@%s>; %s",
		hexID(r, 6), company, hexID(r, 6), company, r.IntN(250)+1, Domain, r.Uint64(), mb, Domain, date.Format(time.RFC1123Z)))
	hdr("Received", fmt.Sprintf("from [10.%d.%d.%d] (unknown [198.51.100.%d])\r\n\tby smtp.%s (Postfix) with ESMTPSA id %s;\r\n\t%s",
		r.IntN(256), r.IntN(256), r.IntN(256), r.IntN(250)+1, company, hexID(r, 10), date.Add(-2*time.Second).Format(time.RFC1123Z)))
	hdr("DKIM-Signature", "v=1; a=rsa-sha256; c=relaxed/relaxed; d="+company+"; s=selector1;\r\n\th=From:To:Subject:Date:Message-ID:MIME-Version:Content-Type;\r\n\tbh="+
		b64Random(r, 32)+";\r\n\tb="+folded(b64Random(r, 256), 70, "\r\n\t  "))
	hdr("Authentication-Results", "mx1."+Domain+"; spf=pass smtp.mailfrom="+company+";\r\n\tdkim=pass header.d="+company+"; dmarc=pass header.from="+company)
	hdr("From", mime.QEncoding.Encode("utf-8", first+" "+last)+" <"+addr+">")
	hdr("To", fmt.Sprintf("Support <support+%d@%s>", mb, Domain))
	if r.IntN(4) == 0 {
		hdr("Cc", fmt.Sprintf("%s <%s>", firstNames[r.IntN(len(firstNames))], "team@"+company))
	}
	hdr("Subject", mime.QEncoding.Encode("utf-8", g.Subject(mb, i)))
	hdr("Date", date.Format(time.RFC1123Z))
	hdr("Message-ID", g.MessageID(mb, i))
	if s.parent >= 0 {
		hdr("In-Reply-To", g.MessageID(mb, s.parent))
		hdr("References", g.MessageID(mb, s.parent))
	}
	hdr("MIME-Version", "1.0")
	hdr("X-Mailer", "Microsoft Outlook 16.0")
	hdr("Thread-Index", b64Random(r, 22))
	hdr("Content-Language", "en-US")
	if s.attachment > 0 {
		hdr("Content-Type", "multipart/mixed;\r\n\tboundary=\"mix"+p.boundary+"\"")
		p.attach = attachmentData(g.rng(streamData, mb, i), s.attachKind, s.attachment, g.Seed, mb, i)
	} else {
		hdr("Content-Type", "multipart/alternative;\r\n\tboundary=\"alt"+p.boundary+"\"")
	}
	p.header = h.String()
	return p
}

// render writes the message with about textLen characters of text.
func (p *parts) render(textLen int) []byte {
	paras := textParagraphs(p.g.rng(streamText, p.mb, p.i), textLen)
	var quote []string
	if p.s.parent >= 0 {
		quote = textParagraphs(p.g.rng(streamQuote, p.mb, p.i), min(textLen/3, 3000))
	}
	var b bytes.Buffer
	b.Grow(int(p.s.size) + 4096)
	b.WriteString(p.header)
	b.WriteString("\r\n")
	if p.attach != nil {
		b.WriteString("This is a multi-part message in MIME format.\r\n\r\n--mix" + p.boundary + "\r\n")
		b.WriteString("Content-Type: multipart/alternative;\r\n\tboundary=\"alt" + p.boundary + "\"\r\n\r\n")
	}
	alt := "--alt" + p.boundary
	b.WriteString(alt + "\r\nContent-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	writeQP(&b, plainText(paras, quote))
	b.WriteString("\r\n" + alt + "\r\nContent-Type: text/html; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	writeQP(&b, htmlText(paras, quote))
	b.WriteString("\r\n" + alt + "--\r\n")
	if p.attach != nil {
		k := attachKinds[p.s.attachKind]
		name := fmt.Sprintf(k.name, p.i)
		b.WriteString("\r\n--mix" + p.boundary + "\r\n")
		b.WriteString("Content-Type: " + k.ctype + "; name=\"" + name + "\"\r\n")
		b.WriteString("Content-Disposition: attachment; filename=\"" + name + "\"\r\n")
		b.WriteString("Content-Transfer-Encoding: base64\r\n\r\n")
		writeBase64Lines(&b, p.attach)
		b.WriteString("\r\n--mix" + p.boundary + "--\r\n")
	}
	return b.Bytes()
}

func textParagraphs(r *rand.Rand, n int) []string {
	var paras []string
	total := 0
	for total < n {
		var p strings.Builder
		for range 2 + r.IntN(4) {
			nw := 6 + r.IntN(11)
			for w := range nw {
				word := words[r.IntN(len(words))]
				if r.IntN(20) == 0 {
					word = accented[r.IntN(len(accented))]
				}
				if w == 0 {
					first, size := utf8.DecodeRuneInString(word)
					word = string(unicode.ToUpper(first)) + word[size:]
				} else {
					p.WriteByte(' ')
				}
				p.WriteString(word)
			}
			p.WriteString(". ")
		}
		s := strings.TrimSpace(p.String())
		if total+len(s) > n && total > 0 {
			// The last paragraph stops where the text is long enough.
			s = strings.TrimSpace(cutAtWord(s, n-total))
			if s == "" {
				break
			}
			s += "."
		}
		paras = append(paras, s)
		total += len(s) + 2
	}
	return paras
}

// cutAtWord is s cut to at most n bytes at a space.
func cutAtWord(s string, n int) string {
	if n >= len(s) {
		return s
	}
	if i := strings.LastIndexByte(s[:max(n, 0)], ' '); i > 0 {
		return s[:i]
	}
	return ""
}

func plainText(paras, quote []string) string {
	var b strings.Builder
	b.WriteString("Hello,\n\n")
	for _, p := range paras {
		b.WriteString(wrap(p, 72, ""))
		b.WriteString("\n")
	}
	b.WriteString("Best regards\n-- \nCustomer service desk\n")
	if len(quote) > 0 {
		b.WriteString("\nOn Mon, 5 Jan 2026 at 09:12, Support <support@" + Domain + "> wrote:\n")
		for _, q := range quote {
			b.WriteString(wrap(q, 70, "> "))
			b.WriteString(">\n")
		}
	}
	return b.String()
}

func htmlText(paras, quote []string) string {
	var b strings.Builder
	b.WriteString("<html xmlns:o=\"urn:schemas-microsoft-com:office:office\">\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\n")
	b.WriteString("<style><!--\np.MsoNormal, li.MsoNormal {margin:0cm; font-size:11.0pt; font-family:\"Calibri\",sans-serif;}\na:link {color:#0563C1; text-decoration:underline;}\n--></style>\n</head>\n")
	b.WriteString("<body lang=\"EN-US\" link=\"#0563C1\">\n<div class=\"WordSection1\">\n<p class=\"MsoNormal\">Hello,</p>\n")
	for _, p := range paras {
		b.WriteString("<p class=\"MsoNormal\">" + html.EscapeString(p) + "<o:p></o:p></p>\n")
	}
	b.WriteString("<p class=\"MsoNormal\">Best regards<br>\n<b><span style=\"color:#1F3864\">Customer service desk</span></b></p>\n")
	if len(quote) > 0 {
		b.WriteString("<div style=\"border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm\">\n<p class=\"MsoNormal\"><b>From:</b> Support &lt;support@" + Domain + "&gt;</p>\n<blockquote>\n")
		for _, q := range quote {
			b.WriteString("<p>" + html.EscapeString(q) + "</p>\n")
		}
		b.WriteString("</blockquote>\n</div>\n")
	}
	b.WriteString("</div>\n</body>\n</html>\n")
	return b.String()
}

// wrap breaks s into lines of at most width characters, each with prefix.
func wrap(s string, width int, prefix string) string {
	var b strings.Builder
	line := 0
	for i, w := range strings.Fields(s) {
		if i > 0 && line+1+len(w) > width {
			b.WriteString("\n")
			line = 0
		}
		if line == 0 {
			b.WriteString(prefix)
		} else {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	b.WriteString("\n")
	return b.String()
}

// writeQP encodes text ("\n" line ends) as quoted-printable with CRLF.
func writeQP(b *bytes.Buffer, text string) {
	w := quotedprintable.NewWriter(b)
	_, _ = w.Write([]byte(text))
	_ = w.Close()
}

// writeBase64Lines encodes data in lines of 76 characters ending in CRLF.
func writeBase64Lines(b *bytes.Buffer, data []byte) {
	line := make([]byte, 76)
	for len(data) > 0 {
		n := min(len(data), 57)
		base64.StdEncoding.Encode(line, data[:n])
		b.Write(line[:base64.StdEncoding.EncodedLen(n)])
		b.WriteString("\r\n")
		data = data[n:]
	}
}

// attachmentData is n bytes that look like a file of the given kind: its
// magic number, then random bytes (text rows for CSV), which do not
// compress, as real PDFs and images mostly do not.
func attachmentData(r *rand.Rand, kind int, n int64, seed uint64, mb, i int) []byte {
	k := attachKinds[kind]
	if k.ctype == "text/csv" {
		var b bytes.Buffer
		b.WriteString("date;order;item;quantity;amount\r\n")
		for int64(b.Len()) < n {
			fmt.Fprintf(&b, "2026-01-%02d;%06d;%s;%d;%d.%02d\r\n", 1+r.IntN(28), r.IntN(1000000), words[r.IntN(len(words))], 1+r.IntN(20), r.IntN(5000), r.IntN(100))
		}
		return b.Bytes()[:n]
	}
	var key [32]byte
	binary.LittleEndian.PutUint64(key[0:], seed)
	binary.LittleEndian.PutUint64(key[8:], uint64(mb))
	binary.LittleEndian.PutUint64(key[16:], uint64(i))
	binary.LittleEndian.PutUint64(key[24:], uint64(kind)+1)
	data := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(data)
	copy(data, k.magic)
	return data
}

func hexID(r *rand.Rand, n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[r.IntN(16)]
	}
	return string(b)
}

func b64Random(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return base64.StdEncoding.EncodeToString(b)
}

func folded(s string, width int, sep string) string {
	var parts []string
	for len(s) > width {
		parts = append(parts, s[:width])
		s = s[width:]
	}
	return strings.Join(append(parts, s), sep)
}

// asciiOnly keeps the letters of s an address may hold without encoding.
func asciiOnly(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c < 128 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			b.WriteRune(c)
		}
	}
	return b.String()
}
