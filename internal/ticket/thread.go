package ticket

import (
	"regexp"
	"strconv"
	"strings"
)

// replyPrefix matches one reply or forward prefix at the start of a subject:
// English (Re, Fwd, Fw), German (AW, WG), Dutch (Antw), Scandinavian (SV,
// Svar, VS, VL), French (TR), Spanish and Portuguese (RV, Enc, Res), Italian
// (Rif), Polish (Odp), Turkish (Ynt) and Chinese forms, with an optional
// counter ("Re[2]:", "Re(3):") and the space French typography puts before
// the colon ("RE :").
var replyPrefix = regexp.MustCompile(`^(?i)(?:re|aw|sv|svar|vs|vl|fwd?|wg|antw|antwort|tr|rv|enc|res|rif|odp|ynt|回复|回覆|答复|答覆|转发|轉寄|轉發)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]`)

// ThreadSubject returns the subject without reply/forward prefixes (Re:, RE:,
// Aw:, AW:, SV:, Fwd:, FW:, WG:, Antw:, and repeated or counted forms like
// "Re[2]:" and "Re: Fwd: re:") and trimmed whitespace. "" stays ""; the
// caller writes "(no subject)". Tags such as "[Ticket#12]" are kept: they
// may be what the ticket system matches on.
func ThreadSubject(s string) string {
	s = strings.TrimSpace(s)
	for {
		loc := replyPrefix.FindStringIndex(s)
		if loc == nil {
			return s
		}
		s = strings.TrimSpace(s[loc[1]:])
	}
}

// ReferencedIDs returns the message ids the message refers to, newest first:
// In-Reply-To, then References from last to first, then the ids of the
// message a bounce returns, deduplicated, each in "<...>" form as stored.
// The message's own id is left out, so a message that names itself cannot
// thread onto itself.
func (m *Message) ReferencedIDs() []string {
	ids := idList(m.InReplyTo)
	refs := idList(m.References)
	for i := len(refs) - 1; i >= 0; i-- {
		ids = append(ids, refs[i])
	}
	ids = append(ids, m.ReturnedIDs...)
	seen := map[string]bool{m.MessageID: true, "": true}
	out := ids[:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// idList returns the "<id>" tokens of an In-Reply-To or References value
// (RFC 5322 section 3.6.4), skipping comments and phrases. A value without
// angle brackets, from a broken mailer, gives each word that has an "@".
func idList(v string) []string {
	if ids := bracketIDs(v); len(ids) > 0 {
		return ids
	}
	var ids []string
	for _, f := range strings.Fields(v) {
		if strings.Contains(f, "@") {
			ids = append(ids, "<"+strings.Trim(f, "<>,;")+">")
		}
	}
	return ids
}

// bracketIDs returns every non-empty "<...>" token of v, in order.
func bracketIDs(v string) []string {
	var ids []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			return ids
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			return ids
		}
		if j > 1 {
			ids = append(ids, v[i:i+j+1])
		}
		v = v[i+j+1:]
	}
}

// ticketTag matches the ticket number a helpdesk puts in the subjects it
// sends, "[#123]" or "[Ticket#123]", which a reply keeps even when the
// customer's mailer drops In-Reply-To and References.
var ticketTag = regexp.MustCompile(`(?i)\[(?:ticket)?\s*#\s*(\d{1,18})\]`)

// TicketTag returns the ticket number tagged in the subject, or else in the
// subject of the message a bounce returns, if any.
func (m *Message) TicketTag() (int64, bool) {
	if n, ok := TicketTag(m.Subject); ok {
		return n, ok
	}
	return TicketTag(m.ReturnedSubject)
}

// TicketTag returns the ticket number tagged in subject, if any.
func TicketTag(subject string) (int64, bool) {
	m := ticketTag.FindStringSubmatch(subject)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	return n, err == nil && n > 0
}
