package mailbox

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// pop3KeyPrefix starts every POP3 message key; the UIDL follows.
const pop3KeyPrefix = "pop3:"

// List returns every message in the maildrop, oldest (lowest message
// number) first, keyed by "pop3:" and its UIDL (RFC 1939 section 7). since
// is not used: POP3 has no UIDs to count from, so the caller tells new
// messages from stored ones by key, and the listing is Complete, so keys
// missing from it are gone from the server.
//
// Messages marked with DELE in this session are still on the server until
// QUIT but no longer listed (RFC 1939 section 5): after a DELE the listing
// is therefore not Complete.
func (s *pop3Session) List(ctx context.Context, _ Cursor) (Listing, error) {
	var out Listing
	err := s.run(ctx, func() error {
		var err error
		out, err = s.list()
		return err
	})
	return out, err
}

// pop3Entry is one line of a UIDL listing.
type pop3Entry struct {
	num  uint32
	uidl string
}

func (s *pop3Session) list() (Listing, error) {
	entries, err := s.uidl()
	if err != nil {
		return Listing{}, err
	}
	sizes, err := s.sizes()
	if err != nil {
		return Listing{}, err
	}
	out := Listing{KeyPrefix: pop3KeyPrefix, Complete: len(s.marked) == 0}
	nums := make(map[string]uint32, len(entries)+len(s.marked))
	for k, n := range s.nums {
		if s.marked[n] {
			nums[k] = n // still valid until QUIT, so a second DELE is skipped
		}
	}
	s.ambiguous = map[string]bool{}
	listed := make(map[uint32]bool, len(entries))
	for _, e := range entries {
		key := pop3KeyPrefix + e.uidl
		if _, dup := nums[key]; dup || listed[e.num] {
			// UIDLs are unique (RFC 1939 section 7). A server that repeats
			// one gets its first message read, and no message of that UIDL
			// is ever deleted: the DELE could hit one never stored. A
			// message number listed twice keeps its first UIDL: else the
			// message would be stored once per UIDL.
			s.ambiguous[key] = true
			continue
		}
		listed[e.num] = true
		nums[key] = e.num
		out.Messages = append(out.Messages, Message{Key: key, UID: e.num, Size: sizes[e.num]})
	}
	s.nums = nums
	return out, nil
}

// uidl reads "UIDL": message number and unique-id of each message, in
// message number order.
func (s *pop3Session) uidl() ([]pop3Entry, error) {
	if _, err := s.cmd("UIDL"); err != nil {
		if isPOP3Err(err) {
			return nil, fmt.Errorf("%s does not offer UIDL, without which stored messages cannot be told from new ones: %w",
				s.acct.addr(), err)
		}
		return nil, err
	}
	var out []pop3Entry
	err := s.lines("UIDL", func(line string) error {
		num, uidl, err := parseUIDLLine(line)
		if err == nil {
			out = append(out, pop3Entry{num: num, uidl: uidl})
		}
		return err
	})
	// Stable, so that of a number listed twice the first line comes first.
	slices.SortStableFunc(out, func(a, b pop3Entry) int { return cmp.Compare(a.num, b.num) })
	return out, err
}

// parseUIDLLine parses "n unique-id". A unique-id is 1 to 70 characters
// from 0x21 to 0x7E (RFC 1939 section 7); a longer one is taken, since it
// still names the message, but no space or control character, which would
// make a different key.
func parseUIDLLine(line string) (uint32, string, error) {
	f := strings.Fields(line)
	if len(f) != 2 {
		return 0, "", fmt.Errorf("UIDL line %q is not \"number unique-id\"", truncate(line, 100))
	}
	n, err := parseMsgNum(f[0])
	if err != nil {
		return 0, "", fmt.Errorf("UIDL line %q: %w", truncate(line, 100), err)
	}
	for i := 0; i < len(f[1]); i++ {
		if c := f[1][i]; c < 0x21 || c > 0x7e {
			return 0, "", fmt.Errorf("UIDL line %q: unique-id has byte %#x", truncate(line, 100), c)
		}
	}
	return n, f[1], nil
}

// sizes reads "LIST": the size in octets of each message.
func (s *pop3Session) sizes() (map[uint32]int64, error) {
	if _, err := s.cmd("LIST"); err != nil {
		return nil, err
	}
	out := map[uint32]int64{}
	err := s.lines("LIST", func(line string) error {
		f := strings.Fields(line)
		if len(f) < 2 {
			return fmt.Errorf("LIST line %q is not \"number size\"", truncate(line, 100))
		}
		n, err := parseMsgNum(f[0])
		if err != nil {
			return fmt.Errorf("LIST line %q: %w", truncate(line, 100), err)
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || size < 0 {
			return fmt.Errorf("LIST line %q: bad size", truncate(line, 100))
		}
		out[n] = size
		return nil
	})
	return out, err
}

func parseMsgNum(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("bad message number %q", truncate(s, 20))
	}
	return uint32(n), nil
}

// number returns the message number of key in this session, listing the
// maildrop first if List was not called; ok is false when the key is not
// on the server or is marked for deletion.
func (s *pop3Session) number(key string) (n uint32, ok bool, err error) {
	if s.nums == nil {
		if _, err := s.list(); err != nil {
			return 0, false, err
		}
	}
	n, ok = s.nums[key]
	return n, ok && !s.marked[n], nil
}
