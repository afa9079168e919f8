package ticket

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"

	"github.com/jhillyerd/enmime/v2"
)

const (
	// maxMIMEDepth caps multipart nesting. enmime's time doubles with each
	// level (about 0.5 s at 20), so a 2 KB message nested 40 deep would
	// never finish. Real mail nests 3 to 6 deep.
	maxMIMEDepth = 12
	// maxMIMEParts caps delimiter lines. enmime joins text parts with
	// repeated string concatenation, quadratic in their number: 90,000
	// parts took 20 s. Real mail has a few dozen at most.
	maxMIMEParts = 500
)

// boundaryParam finds boundary parameters, quoted or not.
var boundaryParam = regexp.MustCompile(`(?i)boundary\s*=\s*(?:"([^"\r\n]*)"|([^\s;"]+))`)

// readEnvelope parses raw with enmime unless its MIME structure is too deep
// or has too many parts to parse in reasonable time.
func readEnvelope(raw []byte) (*enmime.Envelope, error) {
	if err := checkShape(raw); err != nil {
		return nil, err
	}
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

// checkShape refuses a MIME structure too deep or with too many parts. A
// message with too few delimiter lines to pass either limit skips
// mimeShape's regexp scan of the whole message.
func checkShape(raw []byte) error {
	if delimiterLines(raw) <= maxMIMEDepth {
		return nil
	}
	if depth, parts := mimeShape(raw); depth > maxMIMEDepth || parts > maxMIMEParts {
		return fmt.Errorf("mime structure too complex (nesting %d, parts %d)", depth, parts)
	}
	return nil
}

// mimeShape estimates the multipart nesting depth and the number of parts
// from the delimiter lines of declared boundaries, without parsing. It stops
// counting once either limit is passed.
func mimeShape(raw []byte) (depth, parts int) {
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
		parts++
		if i := slices.Index(open, b); i >= 0 {
			open = open[:i+1] // back in an outer part: inner ones ended
		} else {
			open = append(open, b)
		}
		if closing {
			open = open[:len(open)-1]
		}
		depth = max(depth, len(open))
		if depth > maxMIMEDepth || parts > maxMIMEParts {
			return depth, parts
		}
	}
	return depth, parts
}

// delimiterLines counts the lines that start with "--", an upper bound of
// the delimiter lines, stopping past maxMIMEDepth.
func delimiterLines(raw []byte) int {
	n := 0
	if bytes.HasPrefix(raw, []byte("--")) {
		n++
	}
	for rest := raw; n <= maxMIMEDepth; {
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
