package ticket

import (
	"net/mail"
	"strings"
)

// addrParser parses address lists with RFC 2047 names in any charset.
var addrParser = mail.AddressParser{WordDecoder: wordDecoder}

// addresses parses an address field. When RFC 5322 parsing fails it falls
// back to a lenient split, so "Mail Delivery System <MAILER-DAEMON>" or a
// list without commas still yields its addresses.
func (h header) addresses(name string) []*mail.Address {
	v := h.all(name)
	if v == "" {
		return nil
	}
	list, err := addrParser.ParseList(v)
	if err != nil {
		list = lenientAddresses(v)
	}
	for _, a := range list {
		// Encoded words inside quoted names are not decoded by net/mail.
		a.Name = oneLine(decodeWords(a.Name))
		a.Address = strings.TrimSpace(a.Address)
	}
	return list
}

// lenientAddresses splits an address list that net/mail rejects on commas
// outside quotes and angle brackets, and reads each piece on its own.
func lenientAddresses(v string) []*mail.Address {
	var list []*mail.Address
	for _, piece := range splitAddressList(v) {
		if addrs := bareAddresses(piece); len(addrs) > 1 {
			list = append(list, addrs...)
		} else if a := lenientAddress(piece); a != nil {
			list = append(list, a)
		}
	}
	return list
}

// bareAddresses reads a piece without names or brackets, such as
// "a@example.com b@example.com" from a mailer that forgot the commas.
func bareAddresses(piece string) []*mail.Address {
	if strings.ContainsAny(piece, `<"(`) {
		return nil
	}
	var list []*mail.Address
	for _, f := range strings.Fields(piece) {
		if !strings.Contains(f, "@") {
			return nil
		}
		list = append(list, &mail.Address{Address: strings.Trim(f, ";")})
	}
	return list
}

// splitAddressList splits v on commas that are outside quotes and <>.
func splitAddressList(v string) []string {
	var pieces []string
	quoted, angle, start := false, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			quoted = !quoted
		case c == '<' && !quoted:
			angle = true
		case c == '>' && !quoted:
			angle = false
		case c == ',' && !quoted && !angle:
			pieces = append(pieces, v[start:i])
			start = i + 1
		}
	}
	return append(pieces, v[start:])
}

// lenientAddress reads "Name <addr>", "addr (Name)", "addr" or a bare name.
func lenientAddress(piece string) *mail.Address {
	piece = strings.TrimSpace(piece)
	if piece == "" {
		return nil
	}
	if i := strings.LastIndexByte(piece, '<'); i >= 0 {
		addr, _, _ := strings.Cut(piece[i+1:], ">")
		return &mail.Address{Name: trimName(piece[:i]), Address: addr}
	}
	fields := strings.Fields(piece)
	for i, f := range fields {
		if strings.Contains(f, "@") {
			rest := append(fields[:i:i], fields[i+1:]...)
			return &mail.Address{Name: trimName(strings.Join(rest, " ")), Address: f}
		}
	}
	return &mail.Address{Name: trimName(piece)}
}

// trimName removes spaces, quotes and comment parentheses around a name.
func trimName(s string) string {
	return strings.Trim(strings.TrimSpace(s), `"'() `)
}

// formatAddresses renders a list as "Name <addr>, addr, ...". Names that
// contain list punctuation are quoted so the result still splits correctly.
func formatAddresses(list []*mail.Address) string {
	out := make([]string, 0, len(list))
	for _, a := range list {
		if s := formatAddress(a); s != "" {
			out = append(out, s)
		}
	}
	return strings.Join(out, ", ")
}

// formatAddress renders one address as "Name <addr>", "addr" or "Name".
func formatAddress(a *mail.Address) string {
	switch {
	case a.Name == "":
		return a.Address
	case a.Address == "":
		return a.Name
	}
	name := a.Name
	if strings.ContainsAny(name, `,;<>"@:()[]\`) {
		name = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
	}
	return name + " <" + a.Address + ">"
}
