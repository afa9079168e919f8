package ticket

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"regexp"
	"slices"
	"strings"

	"github.com/jhillyerd/enmime/v2"
	"github.com/jhillyerd/enmime/v2/mediatype"
)

// boundaryParam finds boundary parameters, quoted or not. It reads broken
// syntax that a media type parser rejects, but not the RFC 2231 forms
// (boundary*0=, boundary*=), which contentTypes reads.
var boundaryParam = regexp.MustCompile(`(?i)boundary\s*=\s*(?:"([^"\r\n]*)"|([^\s;"]+))`)

// maxTypeValue caps the Content-Type values given to enmime's lenient
// media type parser, which checks each parameter against all before it
// (quadratic) and would otherwise run on every such line of the body. A
// longer value that may declare a boundary counts as unread.
const maxTypeValue = 8 << 10

// readEnvelope parses raw with enmime. The caller checks its shape first
// (checkShape).
func readEnvelope(raw []byte) (*enmime.Envelope, error) {
	root, err := parser.ReadParts(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("read mime: %w", err)
	}
	repairText(root)
	env, err := parser.EnvelopeFromPart(root)
	if err != nil {
		return nil, fmt.Errorf("read mime: %w", err)
	}
	return env, nil
}

// checkShape refuses a MIME structure nested deeper than lim.MIMEDepth or
// with more than lim.MIMEParts parts, which enmime would take too long to
// parse (see DefaultMIMEDepth). A message with too few delimiter lines to
// pass either limit skips the scan of the whole message: every part, and
// every level of nesting, starts with a delimiter line (RFC 2046 section
// 5.1.1), whatever the syntax of its boundary.
//
// When a Content-Type field may declare a boundary that could not be read,
// the estimate from the declared boundaries is not a bound, so the limits
// are also checked against bounds that do not depend on boundaries: each
// level of nesting needs a Content-Type field that may declare one, and
// each part a line starting with "--".
func checkShape(raw []byte, lim Limits) error {
	fewest := min(lim.MIMEDepth, lim.MIMEParts)
	if delimiterLines(raw, fewest) <= fewest {
		return nil
	}
	const outcome = "the body is kept as plain text"
	decl := contentTypes(raw)
	depth, parts := shapeOf(raw, decl.boundaries, lim.MIMEDepth)
	switch {
	case depth > lim.MIMEDepth:
		return errors.New(overLimit("FETCHER_MAX_MIME_DEPTH", int64(lim.MIMEDepth),
			fmt.Sprintf("MIME parts nest at least %d deep", depth), outcome))
	case parts > lim.MIMEParts:
		return errors.New(overLimit("FETCHER_MAX_MIME_PARTS", int64(lim.MIMEParts),
			fmt.Sprintf("the message has %d MIME parts", parts), outcome))
	}
	if !decl.unsure() {
		return nil
	}
	const unread = "a boundary could not be read, so the body is kept as plain text"
	if decl.opening > lim.MIMEDepth {
		return errors.New(overLimit("FETCHER_MAX_MIME_DEPTH", int64(lim.MIMEDepth),
			fmt.Sprintf("MIME parts may nest %d deep", decl.opening), unread))
	}
	if n := delimiterLines(raw, lim.MIMEParts); n > lim.MIMEParts {
		return errors.New(overLimit("FETCHER_MAX_MIME_PARTS", int64(lim.MIMEParts),
			fmt.Sprintf("the message may have more than %d MIME parts", lim.MIMEParts), unread))
	}
	return nil
}

// mimeShape estimates the multipart nesting depth and the number of body
// parts from the delimiter lines of declared boundaries, without parsing:
// each delimiter line but a closing one opens a part. It stops once the
// depth passes maxDepth, as tracking deeper nesting costs more with each
// level; the part count is then a lower bound.
func mimeShape(raw []byte, maxDepth int) (depth, parts int) {
	return shapeOf(raw, declaredBoundaries(raw), maxDepth)
}

// shapeOf is mimeShape with the declared boundaries given.
func shapeOf(raw []byte, declared map[string]bool, maxDepth int) (depth, parts int) {
	if len(declared) == 0 {
		return 0, 0
	}
	var open []string // boundaries from outermost to innermost
	for line := range bytes.Lines(raw) {
		b, closing, ok := delimiter(line, declared)
		if !ok {
			continue
		}
		if !closing {
			parts++
		}
		if i := slices.Index(open, b); i >= 0 {
			open = open[:i+1] // back in an outer part: inner ones ended
		} else {
			open = append(open, b)
		}
		if closing {
			open = open[:len(open)-1]
		}
		depth = max(depth, len(open))
		if depth > maxDepth {
			return depth, parts
		}
	}
	return depth, parts
}

// delimiterLines counts the lines that start with "--", an upper bound of
// the delimiter lines, stopping past most.
func delimiterLines(raw []byte, most int) int {
	n := 0
	if bytes.HasPrefix(raw, []byte("--")) {
		n++
	}
	for rest := raw; n <= most; {
		i := bytes.Index(rest, []byte("\n--"))
		if i < 0 {
			break
		}
		n++
		rest = rest[i+3:]
	}
	return n
}

// declaredBoundaries returns the set of boundary parameters in raw.
func declaredBoundaries(raw []byte) map[string]bool {
	return contentTypes(raw).boundaries
}

// declarations is what the Content-Type fields of a message declare.
type declarations struct {
	// boundaries holds every boundary found: those of the Content-Type
	// fields, and any boundaryParam matches elsewhere.
	boundaries map[string]bool
	// read is the number of distinct boundaries read from Content-Type
	// fields.
	read int
	// multipart counts the fields of a multipart type.
	multipart int
	// opening counts the fields that may open a multipart: those of a
	// multipart type or with a boundary, read or not. enmime reads any part
	// with a boundary as a multipart unless it is text.
	opening int
	// unread counts the fields that may declare a boundary none could be
	// read from.
	unread int
}

// unsure reports whether a boundary may have been missed, so that the
// delimiter lines of the declared boundaries do not bound the shape.
func (d declarations) unsure() bool {
	return d.unread > 0 || d.multipart > d.read
}

// contentTypes reads the Content-Type fields of every header in raw, the
// top-level one and those of parts, as enmime's header reader does: the
// name in any case (RFC 5322 section 1.2.2), folded lines unfolded (RFC
// 5322 section 2.2.3), and, like enmime, lines without a colon taken as
// continuations too. It looks at every line, not only at headers, which
// can only find more.
func contentTypes(raw []byte) declarations {
	d := declarations{boundaries: map[string]bool{}}
	fromFields := map[string]bool{}
	var value []byte
	inField := false
	end := func() {
		if inField {
			d.add(string(value), fromFields)
		}
		inField, value = false, value[:0]
	}
	for line := range bytes.Lines(raw) {
		s := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if inField {
			switch {
			case len(s) == 0:
				end()
				continue
			case s[0] == ' ' || s[0] == '\t' || s[0] == '\r':
				value = append(append(value, ' '), bytes.TrimSpace(s)...)
				continue
			case !bytes.Contains(s, []byte(":")):
				value = append(append(value, ' '), s...)
				continue
			}
			end()
		}
		if name, v, ok := bytes.Cut(s, []byte(":")); ok && len(s) > 0 && s[0] != ' ' && s[0] != '\t' &&
			bytes.EqualFold(bytes.TrimSpace(name), []byte("content-type")) {
			inField, value = true, append(value[:0], bytes.TrimSpace(v)...)
		}
	}
	end()
	d.read = len(fromFields)
	for _, m := range boundaryParam.FindAllSubmatch(raw, -1) {
		d.boundaries[string(submatch(m))] = true
	}
	delete(d.boundaries, "")
	return d
}

// add records the Content-Type field value v. enmime takes the boundary
// that its lenient media type parser reads (mediatype.Parse: RFC 2231
// continuations and charsets, RFC 2047 encoded parameters, missing
// separators); mime.ParseMediaType and boundaryParam read it from values
// too long for that, and boundaryParam from broken syntax too.
func (d *declarations) add(v string, fromFields map[string]bool) {
	found := 0
	take := func(b string) {
		if b != "" {
			d.boundaries[b], fromFields[b] = true, true
			found++
		}
	}
	lower := strings.ToLower(v)
	multipart := strings.HasPrefix(lower, "multipart/")
	parsed := len(v) <= maxTypeValue
	if parsed {
		if mtype, params, _, err := mediatype.Parse(v); err == nil {
			take(params["boundary"])
			multipart = multipart || strings.HasPrefix(mtype, "multipart/")
		}
	}
	if mtype, params, err := mime.ParseMediaType(v); err == nil {
		take(params["boundary"])
		multipart = multipart || strings.HasPrefix(mtype, "multipart/")
	}
	for _, m := range boundaryParam.FindAllStringSubmatch(v, -1) {
		take(m[1] + m[2])
	}
	if multipart {
		d.multipart++
	}
	mayDeclare := multipart || strings.Contains(lower, "boundary") || !parsed
	if found > 0 || mayDeclare {
		d.opening++
	}
	if found == 0 && mayDeclare {
		d.unread++
	}
}

// submatch is the boundary of a boundaryParam match: quoted or not.
func submatch(m [][]byte) []byte {
	if m[1] != nil {
		return m[1]
	}
	return m[2]
}

// delimiter reports whether line is "--b" or the closing "--b--" for a
// declared boundary b.
func delimiter(line []byte, declared map[string]bool) (b string, closing, ok bool) {
	if !bytes.HasPrefix(line, []byte("--")) {
		return "", false, false
	}
	b = string(bytes.TrimRight(line[2:], " \t\r\n"))
	if declared[b] {
		return b, false, true
	}
	if inner, found := bytes.CutSuffix([]byte(b), []byte("--")); found && declared[string(inner)] {
		return string(inner), true, true
	}
	return "", false, false
}

// withoutBreak moves offset i back over the line break before it, which
// belongs to a delimiter line that starts at i (RFC 2046 section 5.1.1).
func withoutBreak(raw []byte, i int) int {
	if i > 0 && raw[i-1] == '\n' {
		i--
	}
	if i > 0 && raw[i-1] == '\r' {
		i--
	}
	return i
}

// decodedCut estimates, without decoding, what the parts of raw decode to:
// 3/4 of the lines of a base64 part, the bytes of any other (quoted-
// printable decodes to less, so the estimate errs high). When the estimate
// passes limit, cut is the offset where the part that passes it starts
// (its delimiter line, or the body of a message that is not multipart):
// parsing raw up to there keeps the parts before it and decodes nothing
// past the limit. Otherwise cut is -1.
func decodedCut(raw []byte, limit int64) (total int64, cut int) {
	declared := declaredBoundaries(raw)
	cut, start, off := -1, -1, 0
	inHeader, base64 := true, false
	for line := range bytes.Lines(raw) {
		lineStart := off
		off += len(line)
		if _, _, ok := delimiter(line, declared); ok {
			start, inHeader, base64 = withoutBreak(raw, lineStart), true, false
			continue
		}
		if inHeader {
			switch {
			case isBlankLine(line):
				inHeader = false
				if start < 0 {
					start = off // the top-level body
				}
			case hasFieldName(line, "content-transfer-encoding"):
				base64 = bytes.Contains(bytes.ToLower(line), []byte("base64"))
			}
			continue
		}
		n := int64(len(bytes.TrimRight(line, "\r\n")))
		if base64 {
			n = n * 3 / 4
		}
		if total += n; total > limit && cut < 0 {
			cut = start
		}
	}
	return total, cut
}
