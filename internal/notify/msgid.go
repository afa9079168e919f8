package notify

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/fetcherhq/fetcher/internal/ticket"
)

const (
	// maxIDLen bounds one msg-id; real ones are well under 100 characters.
	maxIDLen = 250
	// maxRefs is how many ids a References field keeps: the first (the
	// thread's root) and the last maxRefs-1, as many mailers do, so the
	// field of a long thread does not grow without end.
	maxRefs = 10
)

// NewMessageID returns a new, unique Message-ID for a notification about
// ticketID sent from fromAddress:
// "<fetcher.<ticket>.<16 random hex digits>@<domain of fromAddress>>", or
// "@fetcher.invalid" when the address has no usable domain. The domain
// part makes the id globally unique as RFC 5322 section 3.6.4 asks; the
// random part comes from crypto/rand so ids cannot be guessed and forged
// into replies.
func NewMessageID(ticketID int64, fromAddress string) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	return fmt.Sprintf("<fetcher.%d.%s@%s>", ticketID, hex.EncodeToString(b[:]), idDomain(fromAddress))
}

// idDomain returns the lower-case domain of addr if it is a plain ASCII
// host name, else "fetcher.invalid" (RFC 2606 reserves .invalid).
func idDomain(addr string) string {
	a, err := parseAddress(strings.TrimSpace(addr))
	if err != nil {
		return "fetcher.invalid"
	}
	d := strings.ToLower(a.Address[strings.LastIndexByte(a.Address, '@')+1:])
	if len(d) > 253 || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") {
		return "fetcher.invalid"
	}
	if strings.ContainsFunc(d, func(r rune) bool { return !isLDH(r) && r != '.' }) {
		return "fetcher.invalid"
	}
	return d
}

// isLDH reports a letter, digit or hyphen, the characters of a host name
// label (RFC 1035 section 2.3.1), lower case here.
func isLDH(r rune) bool { return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' }

// validID returns id, trimmed, when it is a msg-id we can put in a header:
// "<...>" with only printable ASCII and no spaces or angle brackets inside
// (RFC 5322 section 3.6.4), else "".
func validID(id string) string {
	id = strings.TrimSpace(id)
	if len(id) < 3 || len(id) > maxIDLen || id[0] != '<' || id[len(id)-1] != '>' {
		return ""
	}
	for _, c := range []byte(id[1 : len(id)-1]) {
		if c <= ' ' || c >= 0x7f || c == '<' || c == '>' {
			return ""
		}
	}
	return id
}

// msgIDs returns the valid msg-ids of an In-Reply-To or References value,
// in order, without duplicates. Like the ticket package it takes the
// "<...>" tokens, or, from a broken mailer without angle brackets, each
// word with an "@". Invalid ids are dropped rather than failing the mail.
func msgIDs(v string) []string {
	var ids []string
	for _, id := range rawIDs(v) {
		if id = validID(id); id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

func rawIDs(v string) []string {
	var ids []string
	for rest := v; ; {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '>')
		if j < 0 {
			break
		}
		ids = append(ids, rest[i:i+j+1])
		rest = rest[i+j+1:]
	}
	if len(ids) > 0 {
		return ids
	}
	for _, f := range strings.Fields(v) {
		if strings.Contains(f, "@") {
			ids = append(ids, "<"+strings.Trim(f, "<>,;")+">")
		}
	}
	return ids
}

// trimRefs keeps the first id and the last maxRefs-1 of a long list.
func trimRefs(ids []string) []string {
	if len(ids) <= maxRefs {
		return ids
	}
	out := make([]string, 0, maxRefs)
	out = append(out, ids[0])
	return append(out, ids[len(ids)-(maxRefs-1):]...)
}

// replyRefs returns the References of a reply to m (RFC 5322 section
// 3.6.4): m's References, or else m's In-Reply-To when it holds a single
// id, followed by m's Message-ID; trimmed to maxRefs.
func replyRefs(m *ticket.Message) []string {
	ids := msgIDs(m.References)
	if len(ids) == 0 {
		if irt := msgIDs(m.InReplyTo); len(irt) == 1 {
			ids = irt
		}
	}
	if id := validID(m.MessageID); id != "" {
		ids = append(slices.DeleteFunc(ids, func(v string) bool { return v == id }), id)
	}
	return trimRefs(ids)
}
