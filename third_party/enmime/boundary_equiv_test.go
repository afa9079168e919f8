package enmime

// fetcher: differential tests of the patched boundaryReader.Read (see the top of
// boundary.go) against a verbatim copy of enmime v2.3.0's Read and Next. Both readers are
// driven with the same input, source chunking, bufio size, dest sizes and calls to Next,
// and must agree on every call and on all the state that outlives a call.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/pkg/errors"
)

// origBoundaryReader is a boundaryReader with enmime v2.3.0's Read and Next, copied below
// verbatim but for the receiver type.
type origBoundaryReader boundaryReader

func (b *origBoundaryReader) isDelimiter(buf []byte) bool {
	return (*boundaryReader)(b).isDelimiter(buf)
}

func (b *origBoundaryReader) isTerminator(buf []byte) bool {
	return (*boundaryReader)(b).isTerminator(buf)
}

// Read is enmime v2.3.0's boundaryReader.Read, unchanged.
func (b *origBoundaryReader) Read(dest []byte) (n int, err error) {
	if b.buffer.Len() >= len(dest) {
		// This read request can be satisfied entirely by the buffer.
		n, err = b.buffer.Read(dest)
		if b.atPartStart && n > 0 {
			b.atPartStart = false
		}

		return n, err
	}

	for i := 0; i < len(dest); i++ {
		var cs []byte
		cs, err = b.r.Peek(1)
		if err != nil && err != io.EOF {
			return 0, errors.WithStack(err)
		}
		// Ensure that we can switch on the first byte of 'cs' without panic.
		if len(cs) > 0 {
			padding := 1
			check := false

			switch cs[0] {
			// Check for carriage return as potential CRLF boundary prefix.
			case '\r':
				padding = 2
				check = true
			// Check for line feed as potential LF boundary prefix.
			case '\n':
				check = true

			default:
				if b.atPartStart {
					// If we're at the very beginning of the part (even before the headers),
					// check to see if there's a delimiter that immediately follows.
					padding = 0
					check = true
				}
			}

			if check {
				var peek []byte
				peek, err = b.r.Peek(len(b.nlPrefix) + padding + 1)
				switch err {
				case nil:
					// Check the whitespace at the head of the peek to avoid checking for a boundary early.
					if bytes.HasPrefix(peek, []byte("\n\n")) ||
						bytes.HasPrefix(peek, []byte("\n\r")) ||
						bytes.HasPrefix(peek, []byte("\r\n\r")) ||
						bytes.HasPrefix(peek, []byte("\r\n\n")) {
						break
					}
					// Check the peek buffer for a boundary delimiter or terminator.
					if b.isDelimiter(peek[padding:]) || b.isTerminator(peek[padding:]) {
						// We have found our boundary terminator, lets write out the final bytes
						// and return io.EOF to indicate that this section read is complete.
						n, err = b.buffer.Read(dest)
						switch err {
						case nil, io.EOF:
							if b.atPartStart && n > 0 {
								b.atPartStart = false
							}
							return n, io.EOF
						default:
							return 0, errors.WithStack(err)
						}
					}
				case io.EOF:
					// We have reached the end without finding a boundary,
					// so we flag the boundary reader to add an error to
					// the errors slice and write what we have to the buffer.
					b.unbounded = true
				default:
					continue
				}
			}
		}

		var next byte
		next, err = b.r.ReadByte()
		if err != nil {
			// EOF is not fatal, it just means that we have drained the reader.
			if errors.Is(err, io.EOF) {
				break
			}

			return 0, errors.WithStack(err)
		}

		if err = b.buffer.WriteByte(next); err != nil {
			return 0, errors.WithStack(err)
		}
	}

	// Read the contents of the buffer into the destination slice.
	n, err = b.buffer.Read(dest)
	if b.atPartStart && n > 0 {
		b.atPartStart = false
	}
	return n, err
}

// Next is enmime v2.3.0's boundaryReader.Next, unchanged: copied because it drains the
// current part through the receiver's Read.
func (b *origBoundaryReader) Next() (bool, error) {
	if b.finished {
		return false, nil
	}
	if b.partsRead > 0 {
		// Exhaust the current part to prevent errors when moving to the next part.
		_, _ = io.Copy(io.Discard, b)
	}
	for {
		var line []byte
		var err error
		for {
			// Read whole line, handle extra long lines in cycle
			var segment []byte
			segment, err = b.r.ReadSlice('\n')
			if line == nil {
				line = segment
			} else {
				line = append(line, segment...)
			}

			if err == nil || err == io.EOF {
				break
			} else if err != bufio.ErrBufferFull || len(segment) == 0 {
				return false, errors.WithStack(err)
			}
		}

		if len(line) > 0 && (line[0] == '\r' || line[0] == '\n') {
			// Blank line
			continue
		}
		if b.isTerminator(line) {
			b.finished = true
			return false, nil
		}
		if err != io.EOF && b.isDelimiter(line) {
			// Start of a new part.
			b.partsRead++
			b.atPartStart = true
			return true, nil
		}
		if err == io.EOF {
			// Intentionally not wrapping with stack.
			return false, io.EOF
		}
		if b.partsRead == 0 {
			// The first part didn't find the starting delimiter, burn off any preamble in front of
			// the boundary.
			continue
		}
		b.finished = true
		return false, errors.WithMessagef(errNoBoundaryTerminator, "expecting boundary %q, got %q", string(b.prefix), string(line))
	}
}

var errInjected = errors.New("injected read error")

// sourceReader serves data in chunks of a repeating pattern of sizes (0: as much as
// asked), optionally fails once with errInjected when errAt bytes have been served, and
// records the size of every Read asked of it, which tells how bufio filled its buffer.
type sourceReader struct {
	data        []byte
	off         int
	chunks      []int
	k           int
	errAt       int  // -1: never
	eofWithData bool // return io.EOF with the last bytes
	calls       []int
}

func (s *sourceReader) Read(p []byte) (int, error) {
	s.calls = append(s.calls, len(p))
	if s.errAt >= 0 && s.off >= s.errAt {
		s.errAt = -1
		return 0, errInjected
	}
	if s.off >= len(s.data) {
		return 0, io.EOF
	}
	n := min(len(p), len(s.data)-s.off)
	if len(s.chunks) > 0 {
		if c := s.chunks[s.k%len(s.chunks)]; c > 0 && c < n {
			n = c
		}
		s.k++
	}
	if s.errAt >= 0 && s.off+n > s.errAt {
		n = s.errAt - s.off
	}
	copy(p, s.data[s.off:s.off+n])
	s.off += n
	if s.eofWithData && s.off == len(s.data) {
		return n, io.EOF
	}
	return n, nil
}

// equivConfig is one way to drive both readers.
type equivConfig struct {
	bufSize     int   // bufio.Reader size (bufio makes it at least 16)
	chunks      []int // source chunk sizes, see sourceReader
	errAt       int   // -1: no injected error
	eofWithData bool
	// ops is repeated until Next returns false (or 4*len(data)+200 ops): a size >= 0 is
	// a Read with a dest of that size, opNext a call to Next. Unless noFirstNext, a call
	// to Next comes first, as in enmime.
	ops         []int
	noFirstNext bool
	// After a Read returns io.EOF the next op is a call to Next, unless stickyEOF.
	stickyEOF bool
}

const opNext = -1

type readerUnderTest interface {
	io.Reader
	Next() (bool, error)
}

// errClass describes err as precisely as two readers' errors can be compared.
func errClass(err error) string {
	switch {
	case err == nil:
		return "nil"
	case err == io.EOF:
		return "io.EOF"
	case errors.Is(err, io.EOF):
		return "wrapped io.EOF: " + err.Error()
	default:
		return fmt.Sprintf("%T: %v (injected %t, no terminator %t)", err, err,
			errors.Is(err, errInjected), errors.Is(err, errNoBoundaryTerminator))
	}
}

// runEquiv reads data through the original and the patched reader and fails t at the first
// difference. It returns the number of ops run.
func runEquiv(t *testing.T, data []byte, boundary string, cfg equivConfig) int {
	t.Helper()
	newSide := func() (*sourceReader, *bufio.Reader, *boundaryReader) {
		src := &sourceReader{data: data, chunks: cfg.chunks, errAt: cfg.errAt, eofWithData: cfg.eofWithData}
		br := bufio.NewReaderSize(src, cfg.bufSize)
		return src, br, newBoundaryReader(br, boundary)
	}
	oSrc, oBuf, oState := newSide()
	pSrc, pBuf, pState := newSide()
	orig := (*origBoundaryReader)(oState)
	var patched readerUnderTest = pState

	ops := cfg.ops
	if len(ops) == 0 {
		ops = []int{4096}
	}
	maxOps := 4*len(data) + 200
	// The dests start alike and stay alike if both readers write the same into them, so a
	// write past n shows too.
	oDestBuf, pDestBuf := make([]byte, 1<<15), make([]byte, 1<<15)
	for i := range oDestBuf {
		oDestBuf[i], pDestBuf[i] = byte(i*7), byte(i*7)
	}
	forceNext := !cfg.noFirstNext
	step := 0
	for ; step < maxOps; step++ {
		op := ops[step%len(ops)]
		if op == opNext || forceNext {
			forceNext = false
			oOK, oErr := orig.Next()
			pOK, pErr := patched.Next()
			what := func() string { return fmt.Sprintf("op %d: Next()", step) }
			if oOK != pOK || errClass(oErr) != errClass(pErr) {
				t.Fatalf("%s = %t, %s; original: %t, %s", what(), pOK, errClass(pErr), oOK, errClass(oErr))
			}
			checkSameState(t, what, oSrc, oBuf, oState, pSrc, pBuf, pState)
			if !oOK && (oErr == nil || oErr == io.EOF || oState.finished) {
				break
			}
			continue
		}
		oDest, pDest := oDestBuf[:op], pDestBuf[:op]
		on, oErr := orig.Read(oDest)
		pn, pErr := patched.Read(pDest)
		what := func() string { return fmt.Sprintf("op %d: Read(len %d)", step, op) }
		if on != pn || errClass(oErr) != errClass(pErr) {
			t.Fatalf("%s = %d, %s; original: %d, %s", what(), pn, errClass(pErr), on, errClass(oErr))
		}
		if !bytes.Equal(oDest, pDest) {
			t.Fatalf("%s: dest = %q; original: %q", what(), pDest, oDest)
		}
		checkSameState(t, what, oSrc, oBuf, oState, pSrc, pBuf, pState)
		if oErr == io.EOF && !cfg.stickyEOF {
			forceNext = true
		}
	}
	oRest, oErr := io.ReadAll(oBuf)
	pRest, pErr := io.ReadAll(pBuf)
	if !bytes.Equal(oRest, pRest) || errClass(oErr) != errClass(pErr) {
		t.Fatalf("end: rest of input = %q, %s; original: %q, %s", pRest, errClass(pErr), oRest, errClass(oErr))
	}
	if fmt.Sprint(oSrc.calls) != fmt.Sprint(pSrc.calls) {
		t.Fatalf("end: source Read sizes = %v; original: %v", pSrc.calls, oSrc.calls)
	}
	return step
}

// checkSameState compares what outlives a call: the boundaryReader's fields, its pending
// bytes, how much bufio holds and has read from the source, and bufio's last byte read.
func checkSameState(t *testing.T, what func() string,
	oSrc *sourceReader, oBuf *bufio.Reader, o *boundaryReader,
	pSrc *sourceReader, pBuf *bufio.Reader, p *boundaryReader) {
	t.Helper()
	type state struct {
		AtPartStart, Unbounded, Finished bool
		PartsRead, Buffered              int
		SrcOff, SrcCalls, Pending        int
	}
	get := func(src *sourceReader, buf *bufio.Reader, b *boundaryReader) state {
		return state{b.atPartStart, b.unbounded, b.finished, b.partsRead, buf.Buffered(),
			src.off, len(src.calls), b.buffer.Len()}
	}
	if want, got := get(oSrc, oBuf, o), get(pSrc, pBuf, p); got != want {
		t.Fatalf("after %s: state = %+v; original: %+v", what(), got, want)
	}
	if !bytes.Equal(o.buffer.Bytes(), p.buffer.Bytes()) {
		t.Fatalf("after %s: pending = %q; original: %q", what(), p.buffer.Bytes(), o.buffer.Bytes())
	}
	// UnreadByte works on both or on neither (bufio's lastByte), and ReadByte then puts
	// back the state it found.
	oErr, pErr := oBuf.UnreadByte(), pBuf.UnreadByte()
	if (oErr == nil) != (pErr == nil) {
		t.Fatalf("after %s: UnreadByte() = %v; original: %v", what(), pErr, oErr)
	}
	if oErr == nil {
		oc, _ := oBuf.ReadByte()
		pc, _ := pBuf.ReadByte()
		if oc != pc {
			t.Fatalf("after %s: last byte read = %q; original: %q", what(), pc, oc)
		}
	}
}

// equivInputs are hand-written inputs with the boundaries to read them with.
var equivInputs = []struct {
	name       string
	input      string
	boundaries []string
}{
	{"crlf", "preamble\r\n--B\r\nContent-Type: text/plain\r\n\r\nbody line\r\nline 2\r\n--B\r\n\r\nsecond\r\n--B--\r\nepilogue\r\n", []string{"B", "C"}},
	{"lf", "preamble\n--B\nContent-Type: text/plain\n\nbody line\nline 2\n--B\n\nsecond\n--B--\nepilogue\n", []string{"B"}},
	{"mixed", "--B\r\n\r\nbody\n--B\n\r\nx\r\n--B--\n", []string{"B"}},
	{"boundary at start", "--B\r\n\r\nbody\r\n--B--", []string{"B"}},
	{"boundary right after part start", "--B\r\n--B\r\n\r\nx\r\n--B\r\n--B--\r\n", []string{"B"}},
	{"terminator right after part start", "--B\r\n--B--\r\n", []string{"B"}},
	{"boundary mid-line at part start", "--B\r\nContent-Type: text/plain\r\n\r\nsee --B here\r\nmore --B-- text\r\nx--B\ty\r\n--B--\r\n", []string{"B"}},
	{"boundary mid-line later", "--B\r\n\r\n" + strings.Repeat("0123456789abcdef-\r\n", 300) + "mid --B line\r\n--B--\r\n", []string{"B"}},
	{"dashes", "--B\r\n\r\n-\r\n--\r\n---\r\n----B\r\n-- B\r\n- -B\r\n--B-\r\n--B--x\r\n", []string{"B", "-", "--", "B-"}},
	{"lone CR", "--B\r\n\rab\rcd\r--B\r\rx\r\r\n--B\r\n\r\r\r\n--B--\r", []string{"B"}},
	{"CR LF runs", "--B\r\n\r\n\r\n\n\n\r\r\n--B\r\n\n\r\n--B--\r\n", []string{"B"}},
	{"terminator at EOF", "--B\r\n\r\nbody\r\n--B--", []string{"B"}},
	{"terminator at EOF with newline", "--B\r\n\r\nbody\r\n--B--\r\n", []string{"B"}},
	{"delimiter at EOF", "--B\r\n\r\nbody\r\n--B", []string{"B"}},
	{"delimiter at EOF with newline", "--B\r\n\r\nbody\r\n--B\r\n", []string{"B"}},
	{"missing terminator", "--B\r\n\r\nbody without an end\r\nmore\r\n", []string{"B"}},
	{"missing terminator no newline", "--B\r\n\r\nbody without an end", []string{"B"}},
	{"no boundary at all", "just text\r\nmore text", []string{"B"}},
	{"empty", "", []string{"B"}},
	{"nested prefixes", "--outer\r\nContent-Type: multipart/alternative; boundary=\"outer-inner\"\r\n\r\n" +
		"--outer-inner\r\n\r\ntext\r\n--outer-inner\r\n\r\nmore\r\n--outer-inner--\r\n--outer\r\n\r\nlast\r\n--outer--\r\n",
		[]string{"outer", "outer-inner", "out"}},
	{"nested prefixes reversed", "--abc-d\r\n\r\n--abc\r\n\r\nx\r\n--abc--\r\n--abc-d--\r\n", []string{"abc", "abc-d"}},
	{"whitespace after boundary", "--B \r\n\r\nx\r\n--B\t\r\ny\r\n--B\vz\r\n--B--\r\n", []string{"B"}},
	{"long boundary", "--" + strings.Repeat("b", 70) + "\r\n\r\nbody\r\n--" + strings.Repeat("b", 70) + "--\r\n", []string{strings.Repeat("b", 70), strings.Repeat("b", 69)}},
	{"long line", "--B\r\n\r\n" + strings.Repeat("x", 10000) + "--B\r\n" + strings.Repeat("y", 5000) + "\r\n--B--\r\n", []string{"B"}},
	{"base64 attachment", "--B\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		strings.Repeat(strings.Repeat("QUJD", 19)+"\r\n", 400) + "--B--\r\n", []string{"B"}},
}

// bufferEdgeInputs puts a delimiter at every offset around the ends of bufio's 4096-byte
// buffer.
func bufferEdgeInputs() (inputs []string) {
	for pad := 4096 - 80; pad <= 4096+8; pad++ {
		for _, nl := range []string{"\r\n", "\n"} {
			inputs = append(inputs, "--B"+nl+nl+strings.Repeat("a", pad)+nl+"--B"+nl+"x"+nl+"--B--"+nl)
		}
	}
	return inputs
}

func equivBufSizes(boundary string) []int {
	n := len("\n--"+boundary) + 3
	return []int{16, max(n, 16), max(n+1, 16), 77, 4096}
}

func TestBoundaryReaderMatchesOriginal(t *testing.T) {
	destSizes := []int{1, 2, 7, 76, 4096, 32768}
	mixed := []int{3, 76, 1, 4096, 7, 2, 32768, 0, opNext, 76}
	chunkings := [][]int{nil, {1}, {5, 300, 4096}}
	for _, in := range equivInputs {
		for _, boundary := range in.boundaries {
			for _, bufSize := range equivBufSizes(boundary) {
				for ci, chunks := range chunkings {
					opss := [][]int{mixed}
					for _, size := range destSizes {
						opss = append(opss, []int{size})
					}
					for _, ops := range opss {
						for _, sticky := range []bool{false, true} {
							name := fmt.Sprintf("%s/%q/buf%d/chunks%d/ops%v/sticky%t", in.name, boundary, bufSize, ci, ops, sticky)
							t.Run(name, func(t *testing.T) {
								runEquiv(t, []byte(in.input), boundary, equivConfig{
									bufSize: bufSize, chunks: chunks, errAt: -1, ops: ops, stickyEOF: sticky,
								})
							})
						}
					}
				}
			}
		}
	}
	for i, input := range bufferEdgeInputs() {
		for _, size := range []int{76, 4096, 32768} {
			runEquiv(t, []byte(input), "B", equivConfig{bufSize: 4096, errAt: -1, ops: []int{size}})
			if t.Failed() {
				t.Fatalf("buffer edge input %d, dest size %d", i, size)
			}
		}
	}
}

func TestBoundaryReaderMatchesOriginalOnErrors(t *testing.T) {
	for _, in := range equivInputs {
		for errAt := 0; errAt <= len(in.input); errAt += 1 + errAt/8 {
			for _, eofWithData := range []bool{false, true} {
				for _, ops := range [][]int{{1}, {7}, {4096}} {
					name := fmt.Sprintf("%s/errAt%d/eofWithData%t/ops%v", in.name, errAt, eofWithData, ops)
					t.Run(name, func(t *testing.T) {
						runEquiv(t, []byte(in.input), in.boundaries[0], equivConfig{
							bufSize: 4096, chunks: []int{3, 64}, errAt: errAt, eofWithData: eofWithData, ops: ops,
						})
					})
				}
			}
		}
	}
}

// expandFuzzInput makes boundaries easy for the fuzzer to write: bytes 0 to 4 stand for
// "--"+boundary, a delimiter line, the first half of the boundary, and 1000 bytes of one
// long line or of 76-byte CRLF lines.
func expandFuzzInput(data []byte, boundary string) []byte {
	out := make([]byte, 0, len(data))
	for _, c := range data {
		switch c {
		case 0:
			out = append(out, "--"+boundary...)
		case 1:
			out = append(out, "\r\n--"+boundary+"\r\n"...)
		case 2:
			out = append(out, "--"+boundary[:len(boundary)/2]...)
		case 3:
			out = append(out, strings.Repeat("0123456789", 100)...)
		case 4:
			out = append(out, strings.Repeat(strings.Repeat("QUJD", 19)+"\r\n", 13)[:1000]...)
		default:
			out = append(out, c)
		}
	}
	return out
}

// fuzzConfig derives the bufio size, source chunking, injected error and ops from the
// fuzzer's cfg and ops.
func fuzzConfig(cfg uint32, opBytes []byte, boundary string, dataLen int) equivConfig {
	n := len("\n--"+boundary) + 3
	bufSizes := []int{4096, 16, max(n, 16), max(n+1, 16), max(n+int(cfg>>8)%64, 16), 77, 100, 1024}
	chunkings := [][]int{nil, {1}, {7}, {64}, {1, 5, 300, 4096}, {13}, {4095}, {2}}
	c := equivConfig{
		bufSize:     bufSizes[cfg&7],
		chunks:      chunkings[(cfg>>3)&7],
		errAt:       -1,
		eofWithData: cfg&(1<<6) != 0,
	}
	if cfg&(1<<7) != 0 {
		c.errAt = int(cfg>>16) % (dataLen + 1)
	}
	destSizes := []int{0, 1, 2, 3, 5, 7, 16, 64, 76, 512, 4096, 32768}
	for _, b := range opBytes {
		switch k := int(b & 15); {
		case k < len(destSizes):
			c.ops = append(c.ops, destSizes[k])
		case k == 12 || k == 13:
			c.ops = append(c.ops, opNext)
		case k == 14:
			c.ops = append(c.ops, int(b>>4&7)*3+1)
		default:
			c.ops = append(c.ops, 100+int(b>>4&7)*300)
		}
		if b&0x80 != 0 {
			c.stickyEOF = true
		}
	}
	c.noFirstNext = cfg&(1<<15) != 0
	return c
}

func FuzzBoundaryReaderMatchesOriginal(f *testing.F) {
	for i, in := range equivInputs {
		f.Add([]byte(in.input), in.boundaries[0], []byte{12, 10}, uint32(i))
		f.Add([]byte(in.input), in.boundaries[len(in.boundaries)-1], []byte{12, 1, 2, 0x85, 8, 11, 0}, uint32(i*37)<<3|2)
	}
	f.Add([]byte("\x01Content-Type: text/plain\r\n\r\n\x03\x04\r\n\x00 x\x02\r\n\x01\x03\x00--\r\n"), "boundary-1", []byte{12, 10, 8, 1}, uint32(0))
	f.Add([]byte("\x00\n\n\x03\x00\r\n\x04\n\x00\x02\x00--"), "=_part_0", []byte{12, 14, 0x9e, 15}, uint32(0x12345680))
	f.Fuzz(func(t *testing.T, data []byte, boundary string, ops []byte, cfg uint32) {
		if len(boundary) > 100 || len(data) > 1<<14 || len(ops) > 256 {
			t.Skip()
		}
		input := expandFuzzInput(data, boundary)
		if len(input) > 1<<15 {
			t.Skip()
		}
		runEquiv(t, input, boundary, fuzzConfig(cfg, ops, boundary, len(input)))
	})
}
