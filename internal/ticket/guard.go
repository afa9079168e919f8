package ticket

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/jhillyerd/enmime/v2"
)

// boundaryParam finds boundary parameters, quoted or not.
var boundaryParam = regexp.MustCompile(`(?i)boundary\s*=\s*(?:"([^"\r\n]*)"|([^\s;"]+))`)

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
// pass either limit skips mimeShape's regexp scan of the whole message.
func checkShape(raw []byte, lim Limits) error {
	fewest := min(lim.MIMEDepth, lim.MIMEParts)
	if delimiterLines(raw, fewest) <= fewest {
		return nil
	}
	const outcome = "the body is kept as plain text"
	depth, parts := mimeShape(raw, lim.MIMEDepth)
	switch {
	case depth > lim.MIMEDepth:
		return errors.New(overLimit("FETCHER_MAX_MIME_DEPTH", int64(lim.MIMEDepth),
			fmt.Sprintf("MIME parts nest at least %d deep", depth), outcome))
	case parts > lim.MIMEParts:
		return errors.New(overLimit("FETCHER_MAX_MIME_PARTS", int64(lim.MIMEParts),
			fmt.Sprintf("the message has %d MIME parts", parts), outcome))
	}
	return nil
}

// mimeShape estimates the multipart nesting depth and the number of body
// parts from the delimiter lines of declared boundaries, without parsing:
// each delimiter line but a closing one opens a part. It stops once the
// depth passes maxDepth, as tracking deeper nesting costs more with each
// level; the part count is then a lower bound.
func mimeShape(raw []byte, maxDepth int) (depth, parts int) {
	declared := declaredBoundaries(raw)
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
	declared := map[string]bool{}
	for _, m := range boundaryParam.FindAllSubmatch(raw, -1) {
		b := m[1]
		if b == nil {
			b = m[2]
		}
		if len(b) > 0 {
			declared[string(b)] = true
		}
	}
	return declared
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
