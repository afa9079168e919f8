package ticket

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/jhillyerd/enmime/v2"
)

// lostParts reports whether enmime found no part in a multipart message:
// the declared boundary never occurs in the body (a gateway rewrote one but
// not the other) or there is no boundary parameter at all. enmime then
// drops the whole body as preamble.
func lostParts(env *enmime.Envelope) bool {
	return strings.HasPrefix(env.Root.ContentType, "multipart/") && env.Root.FirstChild == nil
}

// recoverParts parses the message again with the first delimiter line that
// the body actually uses. When that finds no part either, the raw body
// becomes BodyText so that nothing is hidden from staff. It returns the
// envelope and the bytes it was parsed from. The structure found with the
// boundary in use is held to lim like any other.
func recoverParts(raw []byte, env *enmime.Envelope, lim Limits, p *problems) (*enmime.Envelope, []byte) {
	declared := env.Root.Boundary
	head, body := splitMessage(raw)
	if used := firstDelimiter(body); used != "" {
		fixed := withBoundary(head, env.Root.ContentType, used, body)
		if err := checkShape(fixed, lim); err != nil {
			p.add("%v", err)
		} else if env2, err := readEnvelope(fixed); err == nil && env2.Root.FirstChild != nil {
			p.add("multipart: boundary %q not found, read with %q from the body", declared, used)
			return env2, fixed
		}
	}
	p.add("multipart: boundary %q not found, body kept as text", declared)
	env.Text = decodeCharset(string(body), textCharset(env.Root))
	return env, raw
}

// splitMessage splits raw at the blank line that ends the header. head
// keeps its last line ending; body starts after the blank line.
func splitMessage(raw []byte) (head, body []byte) {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\n' {
			continue
		}
		rest := raw[i+1:]
		switch {
		case bytes.HasPrefix(rest, []byte("\r\n")):
			return raw[:i+1], rest[2:]
		case bytes.HasPrefix(rest, []byte("\n")):
			return raw[:i+1], rest[1:]
		}
	}
	return raw, nil
}

// firstDelimiter returns the boundary of the first line that looks like a
// MIME delimiter ("--boundary"), or "".
func firstDelimiter(body []byte) string {
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "--") {
			continue
		}
		b := strings.TrimSuffix(strings.TrimRight(line[2:], " \t\r"), "--")
		if b != "" && !strings.ContainsAny(b, "\"\\") {
			return b
		}
	}
	return ""
}

// withBoundary rebuilds the message with its Content-Type replaced by
// mediaType and the given boundary.
func withBoundary(head []byte, mediaType, boundary string, body []byte) []byte {
	var b bytes.Buffer
	skipping := false
	for _, line := range bytes.SplitAfter(head, []byte("\n")) {
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') && skipping {
			continue
		}
		skipping = hasFieldName(line, "content-type")
		if !skipping {
			b.Write(line)
		}
	}
	fmt.Fprintf(&b, "Content-Type: %s; boundary=\"%s\"\r\n\r\n", mediaType, boundary)
	b.Write(body)
	return b.Bytes()
}

// hasFieldName reports whether a header line starts the named field.
func hasFieldName(line []byte, name string) bool {
	key, _, ok := bytes.Cut(line, []byte(":"))
	return ok && strings.EqualFold(strings.TrimSpace(string(key)), name)
}
