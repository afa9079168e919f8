package tnef

import (
	"bytes"
	"encoding/binary"
	"flag"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/winmail.dat from the test encoder")

const fixturePath = "testdata/winmail.dat"

// GUIDs of named property sets, in wire order (MS-OXPROPS 1.3.2).
var (
	psPublicStrings = [16]byte{0x29, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46}
	psetidCommon    = [16]byte{0x08, 0x20, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46}
)

// Attachment property ids only the encoder needs.
const (
	propAttachExtension = 0x3703
	propAttachFlags     = 0x3714
	propAttachHidden    = 0x7FFE
)

// The message the Outlook-shaped stream carries.
const (
	wantSubject  = "Quartalsbericht März"
	wantBodyText = "Hallo,\r\n\r\nanbei der Bericht für März – siehe Anhang.\r\n"
	wantCID      = "image001.png@01DA0000.12345670"
)

// encapsulatedRTF is HTML encapsulated in RTF the way Outlook writes it
// (MS-OXRTFEX 2.1.3): tags in {\*\htmltag} groups, RTF-only rendering in
// \htmlrtf spans, text in between. wantHTML is what de-encapsulation gives.
const encapsulatedRTF = `{\rtf1\ansi\ansicpg1252\fromhtml1 \fbidis \deff0{\fonttbl` + "\r\n" +
	`{\f0\fswiss\fcharset0 Arial;}` + "\r\n" +
	`{\f1\fmodern Courier New;}` + "\r\n" +
	`{\f2\fnil\fcharset2 Symbol;}` + "\r\n" +
	`{\f3\fswiss\fcharset204 Arial Cyr;}}` + "\r\n" +
	`{\colortbl\red0\green0\blue0;\red5\green99\blue193;}` + "\r\n" +
	`\uc1\pard\plain\deftab360 \f0\fs24 ` + "\r\n" +
	`{\*\htmltag19 <html>}` + "\r\n" +
	`{\*\htmltag2 \par }` + "\r\n" +
	`{\*\htmltag34 <head>}` + "\r\n" +
	`{\*\htmltag1 <meta http-equiv="Content-Type" content="text/html; charset=utf-8">}` + "\r\n" +
	`{\*\htmltag241 <style>}{\*\htmltag241 p \{margin:0\}}{\*\htmltag249 </style>}` + "\r\n" +
	`{\*\htmltag41 </head>}` + "\r\n" +
	`{\*\htmltag2 \par }` + "\r\n" +
	`{\*\htmltag50 <body lang="DE">}\htmlrtf \lang1031 \htmlrtf0 ` + "\r\n" +
	`{\*\htmltag64}` + "\r\n" +
	`{\*\htmltag64 <p>}\htmlrtf {\htmlrtf0 Hallo,` + "\r\n" +
	`{\*\htmltag244 <o:p>}{\*\htmltag252 </o:p>}\htmlrtf \par }\htmlrtf0 ` + "\r\n" +
	`{\*\htmltag72 </p>}` + "\r\n" +
	`{\*\htmltag64 <p>}\htmlrtf {\htmlrtf0 anbei der Bericht f{\*\htmltag84 &uuml;}\htmlrtf \'fc\htmlrtf0 r M\'e4rz \u8211\'96 siehe ` +
	`{\*\htmltag84 <b>}\htmlrtf {\b \htmlrtf0 Anhang\htmlrtf }\htmlrtf0 {\*\htmltag92 </b>}.` + "\r\n" +
	`\htmlrtf \par }\htmlrtf0 {\*\htmltag72 </p>}` + "\r\n" +
	`{\*\htmltag64 <p>}\htmlrtf {\htmlrtf0 {\f3 \'cf\'f0\'e8\'e2\'e5\'f2} \{x\} a\\b\tab c` +
	`{\*\mhtmltag84 <img src="image001.png">}{\*\htmltag84 <img src="cid:` + wantCID + `">}\htmlrtf [Bild]\htmlrtf0 ` + "\r\n" +
	`\htmlrtf \par }\htmlrtf0 {\*\htmltag72 </p>}` + "\r\n" +
	`{\*\htmltag58 </body>}` + "\r\n" +
	`{\*\htmltag27 </html>}}` + "\r\n"

const wantHTML = "<html>\r\n<head>" +
	`<meta http-equiv="Content-Type" content="text/html; charset=utf-8">` +
	"<style>p {margin:0}</style></head>\r\n" +
	`<body lang="DE"><p>Hallo,<o:p></o:p></p>` +
	"<p>anbei der Bericht f&uuml;r März – siehe <b>Anhang</b>.</p>" +
	"<p>Привет {x} a\\b\tc" + `<img src="cid:` + wantCID + `">` + "</p>" +
	"</body></html>"

// pdfData is attachment content with every byte value, so that nothing
// in the path treats it as text.
func pdfData() []byte {
	b := []byte("%PDF-1.4\n%\xE2\xE3\xCF\xD3\n")
	for i := range 512 {
		b = append(b, byte(i))
	}
	return append(b, "\n%%EOF\n"...)
}

// pngData is a real 2x2 PNG image.
func pngData(t testing.TB) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	img.Set(0, 0, color.RGBA{R: 255, A: 255})
	img.Set(1, 1, color.RGBA{B: 255, A: 255})
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

// outlookStream builds a stream shaped like an Outlook winmail.dat with an
// HTML body and two attachments, one of them an inline image.
func outlookStream(t testing.TB) *tnefWriter {
	rtf, _ := compressRTF([]byte(encapsulatedRTF))
	msgProps := (&propWriter{}).
		long(propInternetCPID, 65001).
		binary(propRTFCompressed, rtf).
		namedLong(0x8001, psetidCommon, nameKindID, 0x8503, "", 1).
		namedUnicode(0x8002, psPublicStrings, nameKindString, 0, "Keywords", "Bericht", "Q1").
		bytes()

	pdfProps := (&propWriter{}).
		long(propAttachMethod, 1).
		unicode(propAttachLongName, "Bericht März.pdf").
		unicode(propDisplayName, "Bericht März.pdf").
		string8(propAttachExtension, ".pdf").
		string8(propAttachFilename, "BERICH~1.PDF").
		string8(propAttachMIMETag, "Application/PDF").
		bytes()
	pngProps := (&propWriter{}).
		long(propAttachMethod, 1).
		unicode(propAttachLongName, "image001.png").
		string8(propAttachMIMETag, "image/png").
		unicode(propAttachContentID, wantCID).
		long(propAttachFlags, 4).
		fixed(ptBoolean, propAttachHidden, le32(1)).
		bytes()
	modified := []byte{0xE8, 0x07, 3, 0, 15, 0, 10, 0, 30, 0, 0, 0, 5, 0} // DTR

	return newTNEF().
		attr(lvlMessage, attTnefVersion, le32(0x00010000)).
		attr(lvlMessage, attOemCodepage, append(le32(1252), le32(0)...)).
		attr(lvlMessage, attMessageClass, []byte("IPM.Microsoft Mail.Note\x00")).
		attr(lvlMessage, attSubject, cp1252(wantSubject)).
		attr(lvlMessage, attMessageID, []byte("0000000001\x00")).
		attr(lvlMessage, attBody, cp1252(wantBodyText)).
		attr(lvlMessage, attPriority, []byte{2, 0}).
		attr(lvlMessage, attMsgProps, msgProps).
		attr(lvlAttachment, attAttachRendData, rendData()).
		attr(lvlAttachment, attAttachTitle, cp1252("BERICH~1.PDF")).
		attr(lvlAttachment, attAttachModify, modified).
		attr(lvlAttachment, attAttachData, pdfData()).
		attr(lvlAttachment, attAttachment, pdfProps).
		attr(lvlAttachment, attAttachRendData, rendData()).
		attr(lvlAttachment, attAttachTitle, cp1252("image001.png")).
		attr(lvlAttachment, attAttachData, pngData(t)).
		attr(lvlAttachment, attAttachment, pngProps)
}

// wantMessage is what Decode must return for outlookStream.
func wantMessage(t testing.TB) *Message {
	return &Message{
		Subject:  wantSubject,
		BodyText: wantBodyText,
		BodyHTML: wantHTML,
		BodyRTF:  []byte(encapsulatedRTF),
		Attachments: []Attachment{
			{Filename: "Bericht März.pdf", ContentType: "application/pdf", Data: pdfData()},
			{Filename: "image001.png", ContentType: "image/png", ContentID: wantCID, Data: pngData(t)},
		},
	}
}

func TestDecodeOutlookStream(t *testing.T) {
	msg, err := Decode(outlookStream(t).bytes())
	require.NoError(t, err)
	assert.Equal(t, wantMessage(t), msg)
}

// TestFixture decodes the committed winmail.dat. Run with -update to
// rewrite it from the encoder.
func TestFixture(t *testing.T) {
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(fixturePath), 0o755))
		require.NoError(t, os.WriteFile(fixturePath, outlookStream(t).bytes(), 0o644))
	}
	data, err := os.ReadFile(fixturePath)
	require.NoError(t, err)
	assert.Equal(t, outlookStream(t).bytes(), data, "fixture is stale: run go test -run TestFixture -update")
	msg, err := Decode(data)
	require.NoError(t, err)
	assert.Equal(t, wantMessage(t), msg)
}

func TestDecodeSignature(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":     nil,
		"short":     {0x78, 0x9F, 0x3E},
		"wrong":     []byte("PK\x03\x04 not tnef"),
		"bigEndian": {0x22, 0x3E, 0x9F, 0x78, 0, 0},
	} {
		t.Run(name, func(t *testing.T) {
			msg, err := Decode(data)
			assert.Nil(t, msg)
			assert.ErrorIs(t, err, ErrSignature)
		})
	}
}

// TestDecodeTruncated cuts the stream at every offset: Decode must not
// panic, must report the damage unless the cut falls between attributes,
// and must keep what came before the cut.
func TestDecodeTruncated(t *testing.T) {
	w := outlookStream(t)
	full := w.bytes()
	boundary := map[int]bool{}
	for _, e := range w.ends {
		boundary[e] = true
	}
	subjectEnd := w.ends[4] // signature, version, codepage, class, subject
	want := wantMessage(t)
	for n := 4; n < len(full); n++ {
		msg, err := Decode(full[:n])
		require.NotNil(t, msg, "cut at %d", n)
		if boundary[n] {
			require.NoError(t, err, "cut at %d", n)
		} else {
			require.ErrorIs(t, err, ErrTruncated, "cut at %d", n)
		}
		if n >= subjectEnd {
			assert.Equal(t, want.Subject, msg.Subject, "cut at %d", n)
		}
		assert.LessOrEqual(t, len(msg.Attachments), 2)
		assert.True(t, utf8.ValidString(msg.Subject+msg.BodyText+msg.BodyHTML))
	}
}

func TestDecodeBadChecksum(t *testing.T) {
	w := newTNEF().
		attrSum(lvlMessage, attSubject, cp1252("Hallo"), 0xBEEF).
		attr(lvlMessage, attBody, cp1252("Text"))
	msg, err := Decode(w.bytes())
	require.ErrorIs(t, err, ErrChecksum)
	assert.Contains(t, err.Error(), "0x00018004")
	assert.Equal(t, "Hallo", msg.Subject, "data is kept despite the checksum")
	assert.Equal(t, "Text", msg.BodyText, "decoding goes on after the bad checksum")
}

func TestDecodeUnknownAttributes(t *testing.T) {
	w := newTNEF().
		attr(lvlMessage, 0x00069999, []byte("unknown message attribute")).
		attr(lvlMessage, attSubject, cp1252("S")).
		attr(lvlMessage, attRecipTable, le32(0)).
		attr(lvlMessage, attDateSent, make([]byte, 14)).
		attr(lvlAttachment, attAttachRendData, rendData()).
		attr(lvlAttachment, 0x00067777, []byte{1, 2, 3}).
		attr(lvlAttachment, attAttachTitle, cp1252("a.txt")).
		attr(lvlAttachment, attAttachData, []byte("abc")).
		attr(0x07, 0x12345678, nil)
	msg, err := Decode(w.bytes())
	require.NoError(t, err)
	assert.Equal(t, &Message{
		Subject:     "S",
		Attachments: []Attachment{{Filename: "a.txt", Data: []byte("abc")}},
	}, msg)
}

// TestPropList covers every fixed-size type, multi-valued and named
// properties: if any size or padding were wrong the properties after it
// would be misread.
func TestPropList(t *testing.T) {
	u64 := binary.LittleEndian.AppendUint64(nil, 0x0102030405060708)
	clsid := bytes.Repeat([]byte{0xAB}, 16)
	data := (&propWriter{}).
		fixed(ptShort, 0x0001, []byte{7, 0, 0, 0}).
		fixed(ptBoolean, 0x0002, le32(1)).
		fixed(ptFloat, 0x0003, le32(0x3F800000)).
		fixed(ptError, 0x0004, le32(0x8004010F)).
		fixed(ptDouble, 0x0005, u64).
		fixed(ptCurrency, 0x0006, u64).
		fixed(ptAppTime, 0x0007, u64).
		fixed(ptI8, 0x0008, u64).
		fixed(ptSysTime, 0x0009, u64).
		fixed(ptCLSID, 0x000A, clsid).
		multiFixed(ptLong, 0x000B, le32(1), le32(2), le32(3)).
		multiFixed(ptSysTime, 0x000C, u64, u64).
		multi(ptBinary, 0x000D, []byte{1}, []byte{1, 2, 3, 4, 5}, nil).
		multi(ptString8, 0x000E, cp1252("eins"), cp1252("zwei")).
		namedLong(0x8000, psetidCommon, nameKindID, 0x8503, "", 42).
		namedUnicode(0x8001, psPublicStrings, nameKindString, 0, "Keywordsx", "a", "bc").
		unicode(propSubject, "nach allem").
		bytes()
	props, err := parsePropList(data)
	require.NoError(t, err)
	require.Len(t, props, 17)

	assert.Equal(t, [][]byte{{7, 0, 0, 0}}, props[0].values)
	assert.Equal(t, [][]byte{clsid}, props[9].values)
	assert.Equal(t, [][]byte{le32(1), le32(2), le32(3)}, props[10].values)
	assert.Equal(t, uint16(ptLong|mvFlag), props[10].typ)
	assert.Equal(t, [][]byte{u64, u64}, props[11].values)
	assert.Equal(t, [][]byte{{1}, {1, 2, 3, 4, 5}, {}}, props[12].values)
	assert.Equal(t, [][]byte{cp1252("eins"), cp1252("zwei")}, props[13].values)

	assert.Equal(t, &propName{guid: psetidCommon, kind: nameKindID, id: 0x8503}, props[14].name)
	assert.Equal(t, [][]byte{le32(42)}, props[14].values)
	assert.Equal(t, &propName{guid: psPublicStrings, kind: nameKindString, name: "Keywordsx"}, props[15].name)
	assert.Equal(t, [][]byte{utf16z("a"), utf16z("bc")}, props[15].values)

	s, ok := props.text(propSubject, defaultCodePage)
	assert.True(t, ok)
	assert.Equal(t, "nach allem", s)
	// Named properties are not found by their per-message id.
	assert.Nil(t, props.get(0x8000))
}

func TestPropListMalformed(t *testing.T) {
	tests := map[string][]byte{
		"empty":          nil,
		"hugeCount":      le32(0xFFFFFFFF),
		"unknownType":    append(le32(1), le32(0x00370099)...),
		"hugeValueCount": append(append(le32(1), le32(0x0037001F)...), le32(0xFFFFFFFF)...),
		"hugeLength":     append(append(append(le32(1), le32(0x0037001F)...), le32(1)...), le32(0x7FFFFFFF)...),
		"badNameKind":    append(append(le32(1), le32(0x80000003)...), make([]byte, 16+4)...),
		"hugeNameLength": append(append(append(le32(1), le32(0x80000003)...), append(make([]byte, 16), 1, 0, 0, 0)...), le32(0xFFFFFFF0)...),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := parsePropList(data)
			assert.Error(t, err)
		})
	}
	// The properties before the damage are kept.
	good := (&propWriter{}).long(propInternetCPID, 1252).bytes()
	good[0] = 2
	props, err := parsePropList(good)
	require.ErrorIs(t, err, ErrTruncated)
	cp, ok := props.long(propInternetCPID)
	assert.True(t, ok)
	assert.Equal(t, 1252, cp)
}

func TestDecodeMAPIProperties(t *testing.T) {
	html := "<p>Grüße</p>"
	msgProps := (&propWriter{}).
		unicode(propSubject, "Betreff aus PR_SUBJECT_W ✓").
		unicode(propBody, "Text aus PR_BODY_W\r\n").
		binary(propBodyHTML, []byte(html)).
		long(propInternetCPID, 65001).
		binary(propRTFCompressed, storeRTF([]byte(`{\rtf1\ansi Hallo\par}`))).
		bytes()
	w := newTNEF().
		attr(lvlMessage, attSubject, cp1252("legacy subject")).
		attr(lvlMessage, attBody, cp1252("legacy body")).
		attr(lvlMessage, attMsgProps, msgProps)
	msg, err := Decode(w.bytes())
	require.NoError(t, err)
	assert.Equal(t, "Betreff aus PR_SUBJECT_W ✓", msg.Subject)
	assert.Equal(t, "Text aus PR_BODY_W\r\n", msg.BodyText)
	assert.Equal(t, html, msg.BodyHTML, "PR_HTML wins over RTF and uses PR_INTERNET_CPID")
	assert.Equal(t, []byte(`{\rtf1\ansi Hallo\par}`), msg.BodyRTF, "MELA stream")
	assert.Equal(t, "Hallo\n", RTFText(msg.BodyRTF))
}

func TestDecodeCodePages(t *testing.T) {
	cyrillic := []byte{0xCF, 0xF0, 0xE8, 0xE2, 0xE5, 0xF2, 0} // "Привет" in windows-1251
	tests := []struct {
		name  string
		oem   int
		props *propWriter
		want  string
	}{
		{"default windows-1252", 0, &propWriter{}, "Ïðèâåò"},
		{"attOemCodepage", 1251, &propWriter{}, "Привет"},
		{"PR_MESSAGE_CODEPAGE wins", 1252, (&propWriter{}).long(propMessageCodepage, 1251), "Привет"},
		{"PR_INTERNET_CPID as last hint", 0, (&propWriter{}).long(propInternetCPID, 1251), "Привет"},
		{"UTF-8 claim on 8-bit text", 0, (&propWriter{}).long(propInternetCPID, 65001), "Ïðèâåò"},
		{"unknown code page", 4711, &propWriter{}, "Ïðèâåò"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newTNEF()
			if tt.oem != 0 {
				w.attr(lvlMessage, attOemCodepage, append(le32(uint32(tt.oem)), le32(0)...))
			}
			w.attr(lvlMessage, attSubject, cyrillic).
				attr(lvlMessage, attMsgProps, tt.props.bytes()).
				attr(lvlAttachment, attAttachRendData, rendData()).
				attr(lvlAttachment, attAttachTitle, cyrillic)
			msg, err := Decode(w.bytes())
			require.NoError(t, err)
			assert.Equal(t, tt.want, msg.Subject)
			assert.Equal(t, tt.want, msg.Attachments[0].Filename)
		})
	}
}

func TestAttachmentNames(t *testing.T) {
	tests := []struct {
		name   string
		title  string
		props  *propWriter
		want   string
		wantCT string
		wantID string
	}{
		{"long filename wins", "LONGFI~1.TXT", (&propWriter{}).
			unicode(propDisplayName, "display").unicode(propAttachLongName, "long filename.txt"), "long filename.txt", "", ""},
		{"display name", "DISPLA~1.TXT", (&propWriter{}).unicode(propDisplayName, "display.txt"), "display.txt", "", ""},
		{"title", "TITLE.TXT", &propWriter{}, "TITLE.TXT", "", ""},
		{"PR_ATTACH_FILENAME last", "", (&propWriter{}).string8(propAttachFilename, "FILE.TXT"), "FILE.TXT", "", ""},
		{"content id brackets", "a.gif", (&propWriter{}).
			string8(propAttachMIMETag, " IMAGE/GIF ").string8(propAttachContentID, "<x@y>"), "a.gif", "image/gif", "x@y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newTNEF().attr(lvlAttachment, attAttachRendData, rendData())
			if tt.title != "" {
				w.attr(lvlAttachment, attAttachTitle, cp1252(tt.title))
			}
			w.attr(lvlAttachment, attAttachment, tt.props.bytes())
			msg, err := Decode(w.bytes())
			require.NoError(t, err)
			require.Len(t, msg.Attachments, 1)
			a := msg.Attachments[0]
			assert.Equal(t, tt.want, a.Filename)
			assert.Equal(t, tt.wantCT, a.ContentType)
			assert.Equal(t, tt.wantID, a.ContentID)
		})
	}
}

func TestAttachmentDataFromProperty(t *testing.T) {
	props := (&propWriter{}).
		unicode(propAttachLongName, "x.bin").
		binary(propAttachDataBin, []byte{0, 1, 2, 3, 4}).
		bytes()
	w := newTNEF().
		attr(lvlAttachment, attAttachRendData, rendData()).
		attr(lvlAttachment, attAttachment, props)
	msg, err := Decode(w.bytes())
	require.NoError(t, err)
	assert.Equal(t, []Attachment{{Filename: "x.bin", Data: []byte{0, 1, 2, 3, 4}}}, msg.Attachments)
}

func TestAttachmentOLEObject(t *testing.T) {
	iidIStorage := []byte{0x0B, 0, 0, 0, 0, 0, 0, 0, 0xC0, 0, 0, 0, 0, 0, 0, 0x46}
	props := (&propWriter{}).
		long(propAttachMethod, 6).
		unicode(propDisplayName, "Bild").
		object(propAttachDataBin, iidIStorage, []byte("compound file")).
		bytes()
	w := newTNEF().
		attr(lvlAttachment, attAttachRendData, rendData()).
		attr(lvlAttachment, attAttachment, props)
	msg, err := Decode(w.bytes())
	require.NoError(t, err)
	assert.Equal(t, []Attachment{{Filename: "Bild", Data: []byte("compound file")}}, msg.Attachments)
}

func TestEmbeddedMessage(t *testing.T) {
	inner := newTNEF().
		attr(lvlMessage, attSubject, cp1252("Termin")).
		attr(lvlAttachment, attAttachRendData, rendData()).
		attr(lvlAttachment, attAttachTitle, cp1252("inner.txt")).
		attr(lvlAttachment, attAttachData, []byte("inner data")).
		bytes()
	props := (&propWriter{}).
		long(propAttachMethod, attachMethodEmbedded).
		unicode(propDisplayName, "WG: Termin").
		object(propAttachDataBin, iidIMessage, inner).
		bytes()
	w := newTNEF().
		attr(lvlAttachment, attAttachRendData, rendData()).
		attr(lvlAttachment, attAttachment, props)
	msg, err := Decode(w.bytes())
	require.NoError(t, err)
	require.Len(t, msg.Attachments, 1)
	a := msg.Attachments[0]
	assert.Equal(t, "WG: Termin.tnef", a.Filename)
	assert.Equal(t, "application/ms-tnef", a.ContentType)
	assert.Equal(t, inner, a.Data)

	nested, err := Decode(a.Data)
	require.NoError(t, err)
	assert.Equal(t, "Termin", nested.Subject)
	assert.Equal(t, []Attachment{{Filename: "inner.txt", Data: []byte("inner data")}}, nested.Attachments)
}

func TestAttachmentLimit(t *testing.T) {
	w := newTNEF()
	for range maxAttachments + 5 {
		w.attr(lvlAttachment, attAttachRendData, rendData()).
			attr(lvlAttachment, attAttachData, []byte("x"))
	}
	msg, err := Decode(w.bytes())
	require.ErrorIs(t, err, ErrTooMany)
	assert.Len(t, msg.Attachments, maxAttachments)
}

func TestErrorLimit(t *testing.T) {
	w := newTNEF()
	for range 100 {
		w.attrSum(lvlMessage, attSubject, []byte("x"), 0)
	}
	msg, err := Decode(w.bytes())
	require.NotNil(t, msg)
	require.ErrorIs(t, err, ErrChecksum)
	assert.ErrorIs(t, err, ErrTooMany)
}

// TestHostileLengths feeds declared sizes far beyond the data; decoding must
// finish quickly without allocating by them.
func TestHostileLengths(t *testing.T) {
	header := newTNEF().bytes()
	attr := func(id uint32, length uint32, data []byte) []byte {
		b := append(bytes.Clone(header), lvlMessage)
		b = append(b, le32(id)...)
		b = append(b, le32(length)...)
		return append(b, data...)
	}
	hugeRTF := append(append(append(le32(0xFFFFFFF0), le32(0xFFFFFFFF)...), le32(compLZFu)...), le32(0)...)
	for name, data := range map[string][]byte{
		"attribute length": attr(attAttachData, 0xFFFFFFFF, []byte("abc")),
		"property count":   attr(attMsgProps, 4, le32(0xFFFFFFFF)),
		"rtf sizes": newTNEF().attr(lvlMessage, attMsgProps,
			(&propWriter{}).binary(propRTFCompressed, append(hugeRTF, 0xFF, 0xFF, 0xFF)).bytes()).bytes(),
	} {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			msg, err := Decode(data)
			runtime.ReadMemStats(&after)
			assert.NotNil(t, msg)
			require.Error(t, err)
			assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20))
		})
	}
}

func TestErrorsWrapContext(t *testing.T) {
	rtf, _ := compressRTF([]byte(`{\rtf1 x}`))
	rtf[12] ^= 0xFF // break the CRC
	w := newTNEF().attr(lvlMessage, attMsgProps, (&propWriter{}).binary(propRTFCompressed, rtf).bytes())
	msg, err := Decode(w.bytes())
	require.ErrorIs(t, err, ErrCRC)
	assert.Contains(t, err.Error(), "PR_RTF_COMPRESSED")
	assert.Equal(t, []byte(`{\rtf1 x}`), msg.BodyRTF, "data is returned despite the CRC")
	assert.NotErrorIs(t, err, ErrTruncated)
}
