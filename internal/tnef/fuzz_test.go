package tnef

import (
	"os"
	"testing"
	"unicode/utf8"
)

// FuzzDecode checks that Decode never panics, returns a message whenever
// the signature is right, and only returns valid UTF-8.
func FuzzDecode(f *testing.F) {
	if data, err := os.ReadFile(fixturePath); err == nil {
		f.Add(data)
	}
	f.Add(outlookStream(f).bytes())
	f.Add(newTNEF().bytes())
	f.Add(newTNEF().attr(lvlMessage, attMsgProps, (&propWriter{}).
		unicode(propSubject, "s").
		binary(propRTFCompressed, storeRTF([]byte(`{\rtf1 x}`))).
		namedUnicode(0x8000, psPublicStrings, nameKindString, 0, "n", "v").
		bytes()).bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := Decode(data)
		if msg == nil {
			if err == nil {
				t.Fatal("nil message without error")
			}
			return
		}
		strs := []string{msg.Subject, msg.BodyText, msg.BodyHTML}
		for _, a := range msg.Attachments {
			strs = append(strs, a.Filename, a.ContentType, a.ContentID)
		}
		for _, s := range strs {
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8: %q", s)
			}
		}
		if len(msg.Attachments) > maxAttachments {
			t.Fatalf("%d attachments", len(msg.Attachments))
		}
	})
}

// FuzzRTFText checks that the RTF readers and the decompressor never panic
// and only return valid UTF-8. The input is used both as RTF and as a
// compressed RTF stream.
func FuzzRTFText(f *testing.F) {
	f.Add([]byte(encapsulatedRTF))
	f.Add([]byte(`{\rtf1\ansi\ansicpg932{\fonttbl{\f1\fcharset204 x;}}\uc2\u-10179\'83e\u-8704??{\f1\'cf}\bin2 {}\par}`))
	f.Add(specExample)
	rtf, _ := compressRTF([]byte(encapsulatedRTF))
	f.Add(rtf)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, s := range []string{RTFText(data), rtfHTML(data)} {
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8: %q", s)
			}
		}
		out, _ := decompressRTF(data, maxRTFSize)
		if len(out) > 9*len(data)+dictSize {
			t.Fatalf("%d bytes from %d", len(out), len(data))
		}
	})
}
