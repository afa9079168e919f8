// Added by fetcher (github.com/fetcherhq/fetcher) to its patched copy of enmime v2.3.0;
// see docs/decisions/0014-patched-enmime-boundary-reader.md in that repository.
//
// What: QPDecoder, which decodes quoted-printable content as enmime v2.3.0 did with
// quotedprintable.NewReader(NewQPCleaner(r)) ("the chain"), in one pass over the content
// instead of two that move each byte on its own. On its first Read it reads all of r, as
// enmime reads every part to its end anyway. If r ended with io.EOF, no line is longer than
// maxFastLine bytes and neither of the last two bytes is '=', it decodes what it read in
// place (decodeInPlace): for such content the chain cannot fail, QPCleaner inserts no
// soft line break, and what the chain makes of each line follows from a few rules.
// Otherwise it gives what it read, then r's error, to the chain itself, and reads from
// that. Either way every Read returns the same bytes, n and error (the same value, or the
// same text) as the chain's Read over r would, for any sizes of p and however r delivers
// the content: qpdecode_equiv_test.go runs both side by side, in table tests and in
// FuzzQPDecoderMatchesOriginal. What differs is when r is read (all of it on the first
// Read), and so the output for a source that returns 0 bytes and no error 100 times in a
// row at other reads than those the chain makes (io.ErrNoProgress, see readSource).
//
// Why: in a CPU profile of fetcher on Outlook-like mail (text/plain and text/html parts in
// quoted-printable), the standard library's quotedprintable.Reader was about 17% of all
// CPU time and QPCleaner about 7%. BenchmarkQPDecoder (39 KB, medians, 2 vCPUs): the
// chain 304 µs (545 µs with enmime v2.3.0's QPCleaner), QPDecoder.ReadAll 78 µs.

package coding

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/bits"
	"mime/quotedprintable"
	"slices"
)

// maxFastLine is the longest line, in bytes before its LF, that decodeInPlace decodes.
// QPCleaner escapes a byte into at most three, so within such a line it never reaches
// MaxQPLineLen and never inserts a soft line break (which the chain may or may not lose a
// byte at, depending on how its reads line up, and which keeps white space a line break
// would drop), and no line fills quotedprintable.Reader's 4096-byte bufio.Reader.
const maxFastLine = (MaxQPLineLen - 1) / 3

// maxEmptyReads is bufio.Reader's limit on reads in a row that return 0 bytes and no
// error; the chain's bufio.Reader over r then fails with io.ErrNoProgress.
const maxEmptyReads = 100

// QPDecoder decodes quoted-printable content, escaping first what would make a strict
// decoder fail (see QPCleaner).
type QPDecoder struct {
	src    io.Reader
	loaded bool      // src has been read
	out    []byte    // the decoded content not yet read, unless chain is set
	chain  io.Reader // the chain, reading what was read from src
}

var _ io.Reader = &QPDecoder{}

// NewQPDecoder returns a QPDecoder reading from r. Its output is that of
// quotedprintable.NewReader(NewQPCleaner(r)).
func NewQPDecoder(r io.Reader) *QPDecoder {
	return &QPDecoder{src: r}
}

// Read decodes into p. Like the chain it fills p unless it reaches the end of the content,
// and then returns io.EOF, or the chain's error, on this call and every later one.
func (d *QPDecoder) Read(p []byte) (int, error) {
	if len(p) == 0 {
		// The chain does nothing, not even read from r.
		return 0, nil
	}
	d.load()
	if d.chain != nil {
		return d.chain.Read(p)
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// ReadAll returns what io.ReadAll(d) would, without copying the content when d decoded
// it itself, unless the buffer it decoded in is much larger than the content: that
// buffer held the encoded part, grown by doubling, and a part's content may be kept
// (an attachment's, until its batch is stored) long after decoding.
func (d *QPDecoder) ReadAll() ([]byte, error) {
	d.load()
	if d.chain != nil {
		return io.ReadAll(d.chain)
	}
	out := d.out
	d.out = d.out[len(out):]
	if cap(out)-len(out) > len(out)/4 {
		out = append(make([]byte, 0, len(out)), out...)
	}
	return out, nil
}

// load reads all of src, once, and decodes it in place or sets up the chain over it.
func (d *QPDecoder) load() {
	if d.loaded {
		return
	}
	d.loaded = true
	raw, err := readSource(d.src)
	if err == io.EOF && fastDecodable(raw) {
		d.out = decodeInPlace(raw)
		d.src = nil
		return
	}
	d.chain = quotedprintable.NewReader(NewQPCleaner(&replayReader{data: raw, err: err, src: d.src}))
	d.src = nil
}

// readSource reads r until it fails, or returns io.EOF, or returns nothing and no error
// maxEmptyReads times in a row (then io.ErrNoProgress, as the chain's bufio.Reader).
// The slice returned is never nil.
func readSource(r io.Reader) ([]byte, error) {
	buf := make([]byte, 0, 512)
	empty := 0
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, cap(buf))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case err != nil:
			return buf, err
		case n > 0:
			empty = 0
		default:
			if empty++; empty == maxEmptyReads {
				return buf, io.ErrNoProgress
			}
		}
	}
}

// replayReader returns data, then err, then what src returns. The chain reads from it as
// it would have from src: QPCleaner sees the same bytes and the same error at the same
// place, however they arrive, and if it reads on after io.EOF (only at a '=' among the
// last two bytes), what src returns next.
type replayReader struct {
	data []byte
	err  error // nil once returned
	src  io.Reader
}

func (r *replayReader) Read(p []byte) (int, error) {
	switch {
	case len(r.data) > 0:
		n := copy(p, r.data)
		r.data = r.data[n:]
		return n, nil
	case r.err != nil:
		err := r.err
		r.err = nil
		return 0, err
	}
	return r.src.Read(p)
}

// fastDecodable says whether decodeInPlace gives the chain's output for raw, read to
// io.EOF: no line is longer than maxFastLine and neither of the last two bytes is '='
// (at which QPCleaner's look at the two bytes after a '=' meets io.EOF, and may cut the
// content short, depending on how its reads line up).
func fastDecodable(raw []byte) bool {
	if n := len(raw); n >= 1 && raw[n-1] == '=' || n >= 2 && raw[n-2] == '=' {
		return false
	}
	for len(raw) > maxFastLine {
		i := bytes.IndexByte(raw[:maxFastLine+1], '\n')
		if i < 0 {
			return false
		}
		raw = raw[i+1:]
	}
	return true
}

// decodeInPlace decodes buf, which fastDecodable accepts, into its own start, line by
// line (a line ends after a LF, or at the end of buf), and returns the decoded part. The
// chain makes of such a line:
//   - '=' and two hex digits (either case): the byte they stand for;
//   - any other '=': '=' (QPCleaner escapes it, as "=3D");
//   - any other byte: itself (QPCleaner escapes those a strict decoder rejects, and the
//     standard library's Reader decodes them back);
//   - spaces, tabs, CRs and LFs at the end: dropped, and then CRLF or LF put back if the
//     line ended with it; unless what is left ends with a '=' that QPCleaner let through,
//     one followed by just LF or CRLF: that is a soft line break, dropped too.
func decodeInPlace(buf []byte) []byte {
	w := 0
	for pos := 0; pos < len(buf); {
		end := len(buf)
		if i := bytes.IndexByte(buf[pos:], '\n'); i >= 0 {
			end = pos + i + 1
		}
		w = decodeLine(buf, w, buf[pos:end])
		pos = end
	}
	return buf[:w]
}

// decodeLine decodes line, a part of buf that starts at or after w, into buf at w, and
// returns the index after the decoded line.
func decodeLine(buf []byte, w int, line []byte) int {
	text := line[:trimmedLen(line)]
	dropped := line[len(text):]
	if len(text) > 0 && text[len(text)-1] == '=' && (bytes.Equal(dropped, crlf) || bytes.Equal(dropped, lf)) {
		return unescape(buf, w, text[:len(text)-1])
	}
	w = unescape(buf, w, text)
	// The decoded text ends before the dropped bytes did: this overwrites only them.
	switch {
	case bytes.HasSuffix(dropped, crlf):
		buf[w], buf[w+1] = '\r', '\n'
		w += 2
	case bytes.HasSuffix(dropped, lf):
		buf[w] = '\n'
		w++
	}
	return w
}

var crlf, lf = []byte("\r\n"), []byte("\n")

// trimmedLen returns the length of line without the spaces, tabs, CRs and LFs at its end.
func trimmedLen(line []byte) int {
	n := len(line)
	for n > 0 {
		switch line[n-1] {
		case ' ', '\t', '\r', '\n':
			n--
		default:
			return n
		}
	}
	return 0
}

// unescape copies text, which is in buf at or after w, to buf at w, with each '=' and the
// two hex digits after it (in text) replaced by the byte they stand for, and returns the
// index after the copy. As the copy shrinks text, it never writes to a byte of buf it has
// not read yet.
func unescape(buf []byte, w int, text []byte) int {
	i := 0
	for {
		// Copy up to the next '=', eight bytes at a time while there is none among them
		// (the eight written end no later than the eight read).
		for ; i+8 <= len(text); i, w = i+8, w+8 {
			x := binary.LittleEndian.Uint64(text[i:])
			if equals := equalsMask(x); equals != 0 {
				for k := bits.TrailingZeros64(equals) >> 3; k > 0; k-- {
					buf[w] = text[i]
					i, w = i+1, w+1
				}
				break
			}
			binary.LittleEndian.PutUint64(buf[w:], x)
		}
		for i < len(text) && text[i] != '=' {
			buf[w] = text[i]
			i, w = i+1, w+1
		}
		if i == len(text) {
			return w
		}
		if i+2 < len(text) && hexValue[text[i+1]]|hexValue[text[i+2]] < 16 {
			buf[w] = hexValue[text[i+1]]<<4 | hexValue[text[i+2]]
			i += 3
		} else {
			buf[w] = '='
			i++
		}
		w++
	}
}

// equalsMask sets the high bit of the first byte of x (its low byte first) that is '=',
// and of none before it.
func equalsMask(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	y := x ^ ('=' * ones) // the bytes that were '=' are now 0
	// Subtracting 1 from each byte sets the high bit of a byte that was 0; a byte can only
	// borrow from the next if it was 0 itself, so bytes before the first 0 are unmarked.
	return (y - ones) &^ y & highs
}

// hexValue[b] is the value of the hex digit b, either case, or 0xff.
var hexValue = func() (t [256]byte) {
	for b := range t {
		switch {
		case '0' <= b && b <= '9':
			t[b] = byte(b - '0')
		case 'A' <= b && b <= 'F':
			t[b] = byte(b - 'A' + 10)
		case 'a' <= b && b <= 'f':
			t[b] = byte(b - 'a' + 10)
		default:
			t[b] = 0xff
		}
	}
	return t
}()
