package ticket

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jhillyerd/enmime/v2"
)

const (
	// maxProblems caps the lines of ParseError.
	maxProblems = 5
	// maxProblemLen caps one line of ParseError, in bytes.
	maxProblemLen = 200
)

// harmless lists enmime warnings that are not parse errors: an HTML-only
// mail (text derived from HTML), a declared charset that differs from the
// detected one (enmime then uses the better one), and a part without
// Content-Type (RFC 2045 says it is text/plain). Each is common in ordinary
// mail, so flagging them would flag nearly every message. They count when
// enmime marks them severe.
var harmless = map[string]bool{
	enmime.ErrorPlainTextFromHTML:  true,
	enmime.ErrorCharsetDeclaration: true,
	enmime.ErrorMissingContentType: true,
}

// problems collects distinct one-line descriptions for ParseError.
type problems struct {
	lines []string
	seen  map[string]bool
	more  int // distinct problems past maxProblems
}

// add records a problem unless it was seen before or the cap is reached.
func (p *problems) add(format string, args ...any) {
	line := truncate(oneLine(clean(fmt.Sprintf(format, args...))), maxProblemLen)
	if p.seen[line] {
		return
	}
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	p.seen[line] = true
	if len(p.lines) == maxProblems {
		p.more++
		return
	}
	p.lines = append(p.lines, line)
}

// addEnmime records the enmime problems that matter (see harmless), one
// line per kind with its first detail, so a part full of bad base64 gives
// one line rather than one per bad byte.
func (p *problems) addEnmime(errs []*enmime.Error) {
	var kinds []string
	first, count := map[string]string{}, map[string]int{}
	for _, e := range errs {
		if e == nil || (!e.Severe && harmless[e.Name]) {
			continue
		}
		kind := strings.ToLower(e.Name)
		if count[kind] == 0 {
			kinds = append(kinds, kind)
			first[kind] = e.Detail
		}
		count[kind]++
	}
	for _, kind := range kinds {
		if more := count[kind] - 1; more > 0 {
			p.add("%s: %s (and %d more)", kind, first[kind], more)
		} else {
			p.add("%s: %s", kind, first[kind])
		}
	}
}

// String renders the problems one per line, "" when there are none.
func (p *problems) String() string {
	s := strings.Join(p.lines, "\n")
	if p.more > 0 {
		s += fmt.Sprintf("\n(%d more)", p.more)
	}
	return s
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
