package mailbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// maxPresize caps the buffer reserved up front from the size LIST gave,
// so a server reporting a wrong size cannot make us allocate it.
const maxPresize = 64 << 20

// Fetch retrieves the message with RETR (RFC 1939 section 7) and returns
// its bytes exactly as the server sends them, byte-stuffing undone (see
// readBlock). The message number comes from this session's listing of
// msg.Key, never from an earlier session's msg.UID: numbers change between
// sessions.
//
// A message that does not end in CRLF comes back with one: the server must
// add it to put the terminating "." on a line of its own (RFC 1939 section
// 3), and the client cannot tell that CRLF from the message's own.
func (s *pop3Session) Fetch(ctx context.Context, msg Message) ([]byte, error) {
	var raw []byte
	err := s.run(ctx, func() error {
		n, ok, err := s.number(msg.Key)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("fetch %s: %w", msg.Key, ErrGone)
		}
		raw, err = s.retr(n, msg)
		return err
	})
	return raw, err
}

// FetchHeader returns the header with "TOP n 0" (RFC 1939 section 7; TOP is
// optional, and a server without it answers with an error), cut at
// MaxHeaderBytes.
func (s *pop3Session) FetchHeader(ctx context.Context, msg Message) ([]byte, error) {
	var head []byte
	err := s.run(ctx, func() error {
		n, ok, err := s.number(msg.Key)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("fetch header of %s: %w", msg.Key, ErrGone)
		}
		num := strconv.FormatUint(uint64(n), 10)
		if _, err := s.cmd("TOP", num, "0"); err != nil {
			if isPOP3Err(err) {
				listed, lerr := s.stillListed(num, msg.Key)
				if lerr != nil {
					return lerr
				}
				if !listed {
					return fmt.Errorf("fetch header of %s: %w (%w)", msg.Key, ErrGone, err)
				}
			}
			return fmt.Errorf("POP3 TOP %s (%s): %w", num, msg.Key, err)
		}
		w := &capped{max: MaxHeaderBytes}
		if err := readBlock(s.r, w); err != nil {
			return &NetError{Op: fmt.Sprintf("POP3 TOP %s (%s)", num, msg.Key), Err: err}
		}
		head = w.buf.Bytes()
		return nil
	})
	return head, err
}

// capped keeps the first max bytes written to it (all when max <= 0),
// drops the rest and counts everything.
type capped struct {
	buf   bytes.Buffer
	max   int64
	total int64
}

func (c *capped) Write(p []byte) (int, error) {
	c.total += int64(len(p))
	if c.max <= 0 {
		return c.buf.Write(p)
	}
	if room := c.max - int64(c.buf.Len()); room > 0 {
		c.buf.Write(p[:min(room, int64(len(p)))])
	}
	return len(p), nil
}

func (s *pop3Session) retr(n uint32, msg Message) ([]byte, error) {
	num := strconv.FormatUint(uint64(n), 10)
	if err := s.send("RETR "+num, "RETR "+num); err != nil {
		return nil, err
	}
	raw, err := s.readRETR(num, msg)
	var pe *pop3Error
	if errors.As(err, &pe) {
		return nil, s.refusedRETR(num, msg, pe)
	}
	return raw, err
}

// readRETR reads the reply to "RETR num": the message, a *TooLargeError
// (read off in full), a *pop3Error when the server refused it, or a
// NetError.
func (s *pop3Session) readRETR(num string, msg Message) ([]byte, error) {
	if _, err := s.status("RETR " + num); err != nil {
		return nil, err
	}
	w := &capped{max: msg.MaxBytes}
	w.buf.Grow(int(min(max(msg.Size, 0), maxPresize)) + 2)
	if err := readBlock(s.r, w); err != nil {
		// Nothing partial is returned: the caller would store a cut
		// message as if it were whole.
		return nil, &NetError{Op: fmt.Sprintf("POP3 RETR %s (%s)", num, msg.Key), Err: err}
	}
	if msg.MaxBytes > 0 && w.total > msg.MaxBytes {
		return nil, &TooLargeError{Size: w.total, Limit: msg.MaxBytes}
	}
	return w.buf.Bytes(), nil
}

// refusedRETR says what a refused RETR means: the message is gone, or the
// server refuses a message it still lists.
func (s *pop3Session) refusedRETR(num string, msg Message, pe *pop3Error) error {
	if pe.code() == "" {
		listed, err := s.stillListed(num, msg.Key)
		if err != nil {
			return err
		}
		if !listed {
			// "No such message": another client deleted it (servers that
			// do not lock the maildrop allow that).
			return fmt.Errorf("fetch %s: %w (%w)", msg.Key, ErrGone, pe)
		}
	}
	// Still listed: the server refuses this message (a conversion
	// failure, a transient fault). Skipping it would lose it.
	return &NetError{Op: fmt.Sprintf("POP3 RETR %s (%s), which the server still lists", num, msg.Key), Err: pe}
}

// stillListed asks "UIDL n" whether message n still has key's UIDL. Only
// a -ERR means no: a connection that failed while asking (a NetError,
// returned) says nothing about the message, and taking it for "gone"
// would skip a message that may well be there.
func (s *pop3Session) stillListed(num, key string) (bool, error) {
	r, err := s.cmd("UIDL", num)
	if isPOP3Err(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	fields := strings.Fields(r)
	return len(fields) == 2 && pop3KeyPrefix+fields[1] == key, nil
}
