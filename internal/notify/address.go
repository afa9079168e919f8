package notify

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
)

// parseAddress returns the one address in s, which may be "a@b" or
// "Name <a@b>". It fails for anything net/mail does not read as exactly one
// address, for line breaks (which net/mail would otherwise reject only by
// accident of its grammar) and for addresses SMTP cannot carry.
func parseAddress(s string) (*mail.Address, error) {
	if strings.ContainsAny(s, "\r\n\x00") {
		return nil, errors.New("address contains a line break or NUL")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, err
	}
	if err := checkAddress(a.Address); err != nil {
		return nil, err
	}
	return a, nil
}

// checkAddress rejects what net/mail accepts but no mail server takes.
func checkAddress(addr string) error {
	local, domain, ok := strings.Cut(addr, "@")
	switch {
	case !ok || local == "" || domain == "":
		return fmt.Errorf("%q has no local part and domain", addr)
	case len(addr) > maxAddress:
		return fmt.Errorf("address is longer than %d characters", maxAddress)
	case strings.ContainsFunc(addr, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return fmt.Errorf("%q contains control characters", addr)
	}
	return nil
}

// AdminAddresses returns the addresses of a ticket_types.admin_email
// value, or why it is not a list of addresses; provisioning checks a value
// with it before storing it.
func AdminAddresses(v string) ([]string, error) { return parseAdminList(v) }

// parseAdminList returns the addresses of a ticket_types.admin_email value,
// without duplicates, in the order given.
func parseAdminList(v string) ([]string, error) {
	list, err := mail.ParseAddressList(v)
	if err != nil && strings.Contains(v, ";") {
		// Outlook separates addresses with semicolons, and admins paste
		// lists from it.
		list, err = mail.ParseAddressList(strings.ReplaceAll(v, ";", ","))
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range list {
		if err := checkAddress(a.Address); err != nil {
			return nil, err
		}
		if !containsFold(out, a.Address) {
			out = append(out, a.Address)
		}
	}
	return out, nil
}

// containsFold reports whether list holds addr, ignoring case: the domain
// is case-insensitive and nearly every server treats the local part so too.
func containsFold(list []string, addr string) bool {
	addr = strings.TrimSpace(addr)
	for _, a := range list {
		if strings.EqualFold(strings.TrimSpace(a), addr) {
			return true
		}
	}
	return false
}

// noReplyLocals are local parts of addresses that take no replies: no-reply
// senders, and the bounce and postmaster addresses of mail systems. An
// acknowledgement to them is at best lost, at worst a loop.
var noReplyLocals = []string{
	"noreply", "no-reply", "no_reply", "donotreply", "do-not-reply", "do_not_reply",
	"mailer-daemon", "postmaster", "bounce", "bounces",
}

// isNoReply reports whether the local part of addr is one of noReplyLocals
// or starts with one followed by a separator ("noreply-123",
// "bounces+abc", "no-reply.billing").
func isNoReply(addr string) bool {
	local, _, _ := strings.Cut(strings.ToLower(addr), "@")
	for _, p := range noReplyLocals {
		rest, ok := strings.CutPrefix(local, p)
		if ok && (rest == "" || strings.ContainsRune("+-_.=", rune(rest[0]))) {
			return true
		}
	}
	return false
}
