package coding

// fetcher: differential tests of QPDecoder (see the top of qpdecode.go) against what
// enmime v2.3.0 decoded quoted-printable parts with: the standard library's
// quotedprintable.Reader over enmime v2.3.0's QPCleaner (origQPCleaner, a verbatim copy of
// its Read, in quotedprint_equiv_test.go). Both are driven with the same input, source
// chunking, injected read errors and sizes of p, and must agree on every call.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strings"
	"testing"
)

// qpDecodeConfig is one way to drive both sides.
type qpDecodeConfig struct {
	chunks      []int // source chunk sizes, see sourceReader
	errAt       int   // -1: no injected error
	eofWithData bool
	ops         []int // sizes of p, repeated
}

// newQPDecodeSides returns the original decoder and a QPDecoder, each over a source of
// data as cfg says.
func newQPDecodeSides(data []byte, cfg qpDecodeConfig) (orig io.Reader, patched *QPDecoder) {
	newSrc := func() *sourceReader {
		return &sourceReader{data: data, chunks: cfg.chunks, errAt: cfg.errAt, eofWithData: cfg.eofWithData}
	}
	return quotedprintable.NewReader((*origQPCleaner)(NewQPCleaner(newSrc()))), NewQPDecoder(newSrc())
}

// qpDecodeErrClass tells errors apart by identity where the original returns a sentinel,
// and by type and text otherwise.
func qpDecodeErrClass(err error) string {
	for _, s := range []struct {
		err  error
		name string
	}{
		{nil, "nil"}, {io.EOF, "io.EOF"}, {io.ErrUnexpectedEOF, "io.ErrUnexpectedEOF"},
		{bufio.ErrBufferFull, "bufio.ErrBufferFull"}, {io.ErrNoProgress, "io.ErrNoProgress"},
		{errInjected, "errInjected"},
	} {
		if err == s.err {
			return s.name
		}
	}
	return fmt.Sprintf("%T: %v", err, err)
}

// qpDecodePath says how d decoded: "fast" (decodeInPlace) or "chain".
func qpDecodePath(d *QPDecoder) string {
	switch {
	case !d.loaded:
		return "not loaded"
	case d.chain != nil:
		return "chain"
	default:
		return "fast"
	}
}

// runQPDecodeEquiv reads data through the original decoder and a QPDecoder, with the sizes
// of p in cfg.ops in turn (and 4096 if none is above 0), until both have returned no
// bytes and an error three times in a row, and fails t at the first difference in n, the error
// or any byte of p. Then it compares QPDecoder.ReadAll with io.ReadAll of the original,
// on fresh sources. It returns the output and how QPDecoder decoded.
func runQPDecodeEquiv(t *testing.T, data []byte, cfg qpDecodeConfig) (out []byte, path string) {
	t.Helper()
	orig, patched := newQPDecodeSides(data, cfg)
	// Reads of a non-empty p, at least one in each round of ops, to get to the end.
	ops, nonEmpty := cfg.ops, 0
	for _, op := range ops {
		if op > 0 {
			nonEmpty++
		}
	}
	if nonEmpty == 0 {
		ops, nonEmpty = append(ops, 4096), 1
	}
	maxOps := (8*len(data) + 200) * len(ops) / nonEmpty
	// The buffers start alike and stay alike if both sides write the same into them, so a
	// write past n shows too.
	oBuf, pBuf := make([]byte, 1<<15), make([]byte, 1<<15)
	for i := range oBuf {
		oBuf[i], pBuf[i] = byte(i*7), byte(i*7)
	}
	ends := 0
	for step := 0; step < maxOps && ends < 3; step++ {
		op := ops[step%len(ops)]
		oP, pP := oBuf[:op], pBuf[:op]
		on, oErr := orig.Read(oP)
		pn, pErr := patched.Read(pP)
		if on != pn || qpDecodeErrClass(oErr) != qpDecodeErrClass(pErr) {
			t.Fatalf("call %d: Read(len %d) = %d, %s; original: %d, %s (%s)",
				step, op, pn, qpDecodeErrClass(pErr), on, qpDecodeErrClass(oErr), qpDecodePath(patched))
		}
		if !bytes.Equal(oP, pP) {
			t.Fatalf("call %d: Read(len %d): p = %q; original: %q (%s)", step, op, pP, oP, qpDecodePath(patched))
		}
		out = append(out, oP[:on]...)
		switch {
		case on == 0 && oErr != nil:
			ends++
		case op > 0:
			ends = 0
		}
	}
	if ends < 3 {
		t.Fatalf("no end after %d calls", maxOps)
	}
	path = qpDecodePath(patched)

	orig, patched = newQPDecodeSides(data, cfg)
	oAll, oErr := io.ReadAll(orig)
	pAll, pErr := patched.ReadAll()
	if !bytes.Equal(oAll, pAll) || (oAll == nil) != (pAll == nil) || qpDecodeErrClass(oErr) != qpDecodeErrClass(pErr) {
		t.Fatalf("ReadAll() = %q, %s; io.ReadAll of the original: %q, %s (%s)",
			pAll, qpDecodeErrClass(pErr), oAll, qpDecodeErrClass(oErr), qpDecodePath(patched))
	}
	return out, path
}

// qpLines is n lines of width bytes each, with CRLF, as a mail client writes them.
func qpLines(n, width int) string {
	return strings.Repeat(qpLine(width)+"\r\n", n)
}

// qpDecodeInputs are hand-written inputs; the cleaner's (qpEquivInputs) are used too.
var qpDecodeInputs = []struct{ name, input string }{
	{"trailing white space", "a  \r\nb\t\t\r\nc \t \nd \r \r\n \r\n\t\n  \t"},
	{"trailing white space at EOF", "abc \t "},
	{"trailing CR at EOF", "abc\r"},
	{"CR CR LF", "abc\r\r\n\r\r\r\n"},
	{"soft break then white space", "abc= \r\ndef=\t\r\nghi= \t \nx=  "},
	{"soft break then text", "abc= x\r\ndef=\tx\n"},
	{"soft break then CR CR LF", "abc=\r\r\nd=\r \n"},
	{"equals CR without LF", "abc=\rdef=\r=\r\r\n=\r"},
	{"equals CR then one more", "abc=\rx"},
	{"equals LF", "=\n=\n\n=\r\n"},
	{"equals alone", "="},
	{"equals white space at EOF", "= \t"},
	{"equals at end of lines", "a=\r\n=\r\nb=\n="},
	{"equals before line break in escape", "a=4\r\nb=\r4\nc=4\n=A\r\n=4 \r\n"},
	{"invalid hex", "=G0=0G=gg=  =\t1 =-1 =ZZ x"},
	{"lowercase hex", "=e9=c3=a9=Ab=aB=ff=00 x"},
	{"escaped controls", "=00=0D=0A=09=7F=3D=20=0d=0a x"},
	{"escape at EOF", "abc=41"},
	{"escape cut at EOF", "abc=4"},
	{"8-bit bytes", "caf\xc3\xa9 \x80\xff\xfe\r\n\xe2\x80\x99 \xc3"},
	{"NUL", "a\x00b\x00\r\n\x00"},
	{"controls", "a\x01b\x1fc\x7fd\x0be\x0cf\x0b\r\n\x0c \r\n"},
	{"DEL at end", "abc\x7f"},
	{"CR lines", strings.Repeat(qpLine(300)+"\r", 20)},
	{"LF-less 4096", qpLine(4096)},
	{"LF-less 4095 then 4097", qpLine(4095) + "\n" + qpLine(4097)},
	{"line 5000 with escapes", strings.Repeat("=C3=A9x", 1000) + "\r\n"},
	// Lines of up to 341 bytes before the LF (maxFastLine) are decoded in place.
	{"line 341", qpLine(341) + "\n" + qpLine(341)},
	{"line 341 and CR", qpLine(341) + "\r\n"},
	{"last line 342", "abc\r\n" + qpLine(342)},
	// 341 bytes that QPCleaner escapes make a line of 1023: no soft line break. One more
	// byte (here white space) and QPCleaner inserts one before the line break, which keeps
	// the white space that the line break alone would drop.
	{"escaped 341", strings.Repeat("\xe9", 341) + "\n" + strings.Repeat("\x00", 341) + "\n"},
	{"escaped 340 and a space", strings.Repeat("\xe9", 340) + " \n" + strings.Repeat("\x7f", 340) + "\t\n"},
	{"escaped 341 and a space", strings.Repeat("\xe9", 341) + " \n"},
	{"escaped 341 and a tab", strings.Repeat("\x00", 341) + "\t\r\n"},
	{"escaped 340 and a space with CRLF", strings.Repeat("\xe9", 340) + " \r\n"},
	{"invalid equals 341 and a space", strings.Repeat("=", 341) + " \n"},
	{"html", strings.Repeat("<p style=3D\"margin:0cm\"><span lang=3D\"DE\">Gr=C3=BC=C3=9Fe aus K=C3=B6ln,=\r\n wir melden uns.</span></p>\r\n", 40)},
	{"plain text", qpLines(60, 76) + qpLine(20)},
	// QPCleaner's first Read fills 4096 bytes: these end with '=' at its last byte.
	{"equals at the end of a Read", qpLines(52, 76) + qpLine(39) + "=\r"},
	{"equals at the end of a Read and EOF", qpLines(52, 76) + qpLine(39) + "="},
}

// qpDecodeAllInputs are qpDecodeInputs and qpEquivInputs.
func qpDecodeAllInputs() []struct{ name, input string } {
	return append(append([]struct{ name, input string }(nil), qpDecodeInputs...), qpEquivInputs...)
}

func TestQPDecoderMatchesOriginal(t *testing.T) {
	opss := [][]int{{1}, {2}, {3}, {7}, {76}, {512}, {4096}, {32768}, {3, 76, 1, 4096, 0, 7, 2, 32768, 4, 512}}
	chunkings := [][]int{nil, {1}, {5, 300, 4096}, {-1, 3}, {4095}}
	paths := map[string]int{}
	for _, in := range qpDecodeAllInputs() {
		for ci, chunks := range chunkings {
			for _, ops := range opss {
				for _, eofWithData := range []bool{false, true} {
					cfg := qpDecodeConfig{chunks: chunks, errAt: -1, eofWithData: eofWithData, ops: ops}
					_, path := runQPDecodeEquiv(t, []byte(in.input), cfg)
					if t.Failed() {
						t.Fatalf("%s: %+v (chunking %d)", in.name, cfg, ci)
					}
					paths[path]++
				}
			}
		}
	}
	if paths["fast"] == 0 || paths["chain"] == 0 {
		t.Errorf("decoded by path: %v; want both", paths)
	}
}

// TestQPDecoderMatchesOriginalOnErrors injects a read error at offsets through each input
// (and at its end: after io.EOF, if the source returns that with the last bytes).
func TestQPDecoderMatchesOriginalOnErrors(t *testing.T) {
	for _, in := range qpDecodeAllInputs() {
		for errAt := 0; errAt <= len(in.input); errAt += 1 + errAt/16 {
			for _, ops := range [][]int{{1}, {7}, {4096}} {
				for _, eofWithData := range []bool{false, true} {
					cfg := qpDecodeConfig{chunks: []int{3, 64}, errAt: errAt, eofWithData: eofWithData, ops: ops}
					runQPDecodeEquiv(t, []byte(in.input), cfg)
					if t.Failed() {
						t.Fatalf("%s: %+v", in.name, cfg)
					}
				}
			}
		}
		cfg := qpDecodeConfig{chunks: []int{3, 64}, errAt: len(in.input), eofWithData: true}
		runQPDecodeEquiv(t, []byte(in.input), cfg)
		if t.Failed() {
			t.Fatalf("%s: %+v", in.name, cfg)
		}
	}
}

// TestQPDecoderMatchesOriginalAtEnd ends the content, at offsets around the ends of
// QPCleaner's first two Reads (when its bufio.Reader is filled), with a '=' before zero to
// two more bytes, which the chain may cut short there.
func TestQPDecoderMatchesOriginalAtEnd(t *testing.T) {
	for _, end := range []string{"=", "=\r", "= ", "=4", "=\n", "=\r\n", "=41", "x= \r\n"} {
		for _, size := range []int{4096, 8192 - 40} {
			for pad := size - 6; pad <= size+3; pad++ {
				in := qpLines(pad/78, 76) + qpLine(pad%78) + end
				for _, ops := range [][]int{{1}, {7}, {4096}, {32768}} {
					runQPDecodeEquiv(t, []byte(in), qpDecodeConfig{chunks: []int{1000}, errAt: -1, ops: ops})
					if t.Failed() {
						t.Fatalf("end %q after %d bytes, dest sizes %v", end, pad, ops)
					}
				}
			}
		}
	}
}

// TestQPDecoderEmptyReads has sources that return nothing, nor an error, 99 and 100 times
// in a row (at the start, where both sides read alike) or always: the chain's bufio.Reader
// gives up with io.ErrNoProgress at 100.
func TestQPDecoderEmptyReads(t *testing.T) {
	for _, empties := range []int{99, 100} {
		chunks := make([]int, empties+1)
		for i := range empties {
			chunks[i] = -1
		}
		for _, in := range []string{"", "abc", qpLines(100, 76)} {
			runQPDecodeEquiv(t, []byte(in), qpDecodeConfig{chunks: chunks, errAt: -1})
		}
	}
	runQPDecodeEquiv(t, []byte("abc"), qpDecodeConfig{chunks: []int{-1}, errAt: -1})
}

// TestQPDecoderPaths pins which inputs are decoded in place, so that the differential
// tests compare that path on the inputs that test its limits.
func TestQPDecoderPaths(t *testing.T) {
	inputs := map[string]string{}
	for _, in := range qpDecodeAllInputs() {
		inputs[in.name] = in.input
	}
	for _, tc := range []struct {
		name, path string
		errAt      int
	}{
		{"empty", "fast", -1},
		{"realistic", "fast", -1},
		{"html", "fast", -1},
		{"trailing white space", "fast", -1},
		{"soft break then white space", "fast", -1},
		{"equals CR then one more", "fast", -1},
		{"NUL", "fast", -1},
		{"line 341", "fast", -1},
		{"escaped 341", "fast", -1},
		{"escaped 340 and a space", "fast", -1},
		{"escape at EOF", "fast", -1},
		{"line 341 and CR", "chain", -1},
		{"escaped 340 and a space with CRLF", "chain", -1},
		{"equals at the end of a Read and EOF", "chain", -1},
		{"last line 342", "chain", -1},
		{"escaped 341 and a space", "chain", -1},
		{"CR lines", "chain", -1},
		{"equals at EOF", "chain", -1},
		{"equals CR at EOF", "chain", -1},
		{"escape cut at EOF", "chain", -1},
		{"equals at the end of a Read", "chain", -1},
		{"realistic", "chain", 100},
		{"realistic", "chain", len(inputs["realistic"])},
	} {
		in, ok := inputs[tc.name]
		if !ok {
			t.Fatalf("no input %q", tc.name)
		}
		_, path := runQPDecodeEquiv(t, []byte(in), qpDecodeConfig{errAt: tc.errAt})
		if path != tc.path {
			t.Errorf("%s (error at %d) decoded by %s; want %s", tc.name, tc.errAt, path, tc.path)
		}
	}
}

// TestQPDecoderOutput pins a few outputs, so that the differential tests cannot pass by
// both sides being wrong in the same way.
func TestQPDecoderOutput(t *testing.T) {
	readEnd := qpLines(52, 76) + qpLine(39) // 4095 bytes
	for _, tc := range []struct{ in, want, err string }{
		{"caf=C3=a9 \r\nna=\r\nive  \n=ZZ x=\r\n", "café\r\nnaive\n=ZZ x", "EOF"},
		{"abc\x00\xe9=3D= =\r\n\r\n", "abc\x00\xe9== \r\n", "EOF"},
		{"a\r\n", "a\r\n", "EOF"},
		{"a=", "a=", "EOF"},
		{strings.Repeat("\xe9", 341) + " \n", strings.Repeat("\xe9", 341) + " \n", "EOF"},
		{strings.Repeat("a\r", 2100), strings.Repeat("a\r", 2047) + "a", "bufio: buffer full"},
		// Upstream quirks, kept: when QPCleaner's first Read fills up in the "=3D" it
		// writes for a '=' before the end, what does not fit is lost.
		{readEnd + "=", readEnd, "EOF"},
		{readEnd + "=\r", readEnd, "EOF"},
		{readEnd[1:] + "=\r", readEnd[1:] + "=3", "EOF"},
		{readEnd[2:] + "=\r", readEnd[2:] + "=", "EOF"},
	} {
		_, patched := newQPDecodeSides([]byte(tc.in), qpDecodeConfig{errAt: -1})
		got, err := io.ReadAll(patched)
		if err == nil {
			err = io.EOF // what io.ReadAll took away
		}
		if string(got) != tc.want || err.Error() != tc.err {
			t.Errorf("decode(%q) = %q, %v; want %q, %s", qpTail(tc.in), qpTail(string(got)), err, qpTail(tc.want), tc.err)
		}
	}
}

// qpTail shortens s to its last 40 bytes, for messages.
func qpTail(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("[%d bytes]...%s", len(s)-40, s[len(s)-40:])
	}
	return s
}

func FuzzQPDecoderMatchesOriginal(f *testing.F) {
	for i, in := range qpDecodeAllInputs() {
		f.Add([]byte(in.input), []byte{12}, uint32(i))
		f.Add([]byte(in.input), []byte{1, 3, 0x2e, 9, 0, 15, 13}, uint32(i*37)<<3|uint32(i%8)|uint32(i*1000)<<16)
	}
	f.Add([]byte("0"), []byte("0"), uint32(0)) // only reads of an empty p
	f.Add([]byte("\xfa\r\n\xf9\xfb\xfb=\x00\xe9=\n=c3=A9\t \r\n\r\xfa=ZZ= \r\n=\r"), []byte{4, 0x1e, 2, 9}, uint32(0x00123456))
	f.Fuzz(func(t *testing.T, data []byte, ops []byte, cfg uint32) {
		if len(data) > 1<<13 || len(ops) > 256 {
			t.Skip()
		}
		input := expandQPFuzzInput(data)
		if len(input) > 1<<15 {
			t.Skip()
		}
		c := qpFuzzConfig(cfg, ops, len(input))
		runQPDecodeEquiv(t, input, qpDecodeConfig{chunks: c.chunks, errAt: c.errAt, eofWithData: c.eofWithData, ops: c.ops})
	})
}

// BenchmarkQPDecoder reads benchQPText to the end as enmime reads a part: with io.ReadAll
// through enmime v2.3.0's chain (the standard library's Reader over the original
// QPCleaner), through the chain with the patched QPCleaner, and through QPDecoder; and
// with QPDecoder.ReadAll, as enmime now does.
func BenchmarkQPDecoder(b *testing.B) {
	data := benchQPText()
	for _, side := range []string{"original", "patched-cleaner", "decoder", "decoder-ReadAll"} {
		b.Run(side, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				switch side {
				case "original":
					_, err = io.ReadAll(quotedprintable.NewReader((*origQPCleaner)(NewQPCleaner(bytes.NewReader(data)))))
				case "patched-cleaner":
					_, err = io.ReadAll(quotedprintable.NewReader(NewQPCleaner(bytes.NewReader(data))))
				case "decoder":
					_, err = io.ReadAll(NewQPDecoder(bytes.NewReader(data)))
				default:
					_, err = NewQPDecoder(bytes.NewReader(data)).ReadAll()
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestQPDecoderReadAllKeepsNoSpareBuffer: content decoded in place is not
// handed over in the much larger buffer that held the encoded part.
func TestQPDecoderReadAllKeepsNoSpareBuffer(t *testing.T) {
	in := strings.Repeat("=E2=82=AC=E2=82=AC=E2=82=AC=E2=82=AC=E2=82=AC=E2=82=AC=E2=82=AC=E2=82=AC=\r\n", 1<<14)
	out, err := NewQPDecoder(strings.NewReader(in)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("€", 8<<14); string(out) != want {
		t.Fatalf("decoded %d bytes, want %d", len(out), len(want))
	}
	if cap(out) > len(out)+len(out)/4 {
		t.Errorf("cap %d for %d bytes of content", cap(out), len(out))
	}
}
