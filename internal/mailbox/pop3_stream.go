package mailbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// pop3Window is how many RETRs are in flight at once when the server
// offers PIPELINING (RFC 2449 section 6.6): enough that the next messages
// are already on their way while one is read, so a batch costs about one
// round trip. The commands are a few bytes each, so they can never fill
// the server's receive buffer while we read its replies.
const pop3Window = 32

// slot is a message whose RETR is sent (num > 0) or which is not listed
// (num == 0), waiting for its turn.
type slot struct {
	msg Message
	num string
}

// Stream retrieves msgs with RETR, pipelined when the server offers
// PIPELINING, and hands each to got in order.
func (s *pop3Session) Stream(ctx context.Context, msgs []Message, got func(Message, []byte, error) error) error {
	if len(msgs) == 0 {
		return nil
	}
	return s.run(ctx, func() error { return s.stream(msgs, got) })
}

func (s *pop3Session) stream(msgs []Message, got func(Message, []byte, error) error) error {
	window := 1
	if _, ok := s.caps["PIPELINING"]; ok {
		window = pop3Window
	}
	var queue []slot
	next := 0
	for next < len(msgs) || len(queue) > 0 {
		var err error
		if queue, next, err = s.fill(msgs, queue, next, window); err != nil {
			return err
		}
		sl := queue[0]
		queue = queue[1:]
		raw, err := s.take(sl, queue)
		if pe := (*pop3Error)(nil); errors.As(err, &pe) {
			// take drained the replies behind the refusal: those are
			// sent again.
			next -= len(queue)
			queue = nil
			err = s.refusedRETR(sl.num, sl.msg, pe)
		}
		if ne := (*NetError)(nil); errors.As(err, &ne) {
			return err
		}
		if gerr := s.hand(got, sl.msg, raw, err); gerr != nil {
			// got's error comes back as is (the caller may compare it);
			// joined only with a drain failure, which ends the session.
			if derr := s.drain(queue); derr != nil {
				return errors.Join(gerr, derr)
			}
			return gerr
		}
	}
	return nil
}

// hand runs got with the command deadline off, and arms it afresh once got
// returns. The deadline bounds the server, not got: got may wait as long
// as it likes for the database, and that wait would otherwise use up the
// deadline and fail the next read or RETR of a server that did nothing
// wrong.
func (s *pop3Session) hand(got func(Message, []byte, error) error, msg Message, raw []byte, err error) error {
	s.conn.disarm()
	defer s.conn.arm()
	return got(msg, raw, err)
}

// fill sends RETR for the messages from next on until window are in
// flight, in one write, and returns the queue and the new next.
func (s *pop3Session) fill(msgs []Message, queue []slot, next, window int) ([]slot, int, error) {
	var lines []string
	for next < len(msgs) && len(queue) < window {
		n, ok, err := s.number(msgs[next].Key)
		if err != nil {
			return queue, next, err
		}
		sl := slot{msg: msgs[next]}
		if ok {
			sl.num = strconv.FormatUint(uint64(n), 10)
			lines = append(lines, "RETR "+sl.num)
		}
		queue = append(queue, sl)
		next++
	}
	if len(lines) == 0 {
		return queue, next, nil
	}
	return queue, next, s.send("RETR", lines...)
}

// take reads sl's reply. On a refusal (a *pop3Error), the replies still in
// flight behind it are read off and dropped first, so that the session can
// ask what the refusal means.
func (s *pop3Session) take(sl slot, behind []slot) ([]byte, error) {
	if sl.num == "" {
		return nil, fmt.Errorf("fetch %s: %w", sl.msg.Key, ErrGone)
	}
	raw, err := s.readRETR(sl.num, sl.msg)
	var pe *pop3Error
	if !errors.As(err, &pe) {
		return raw, err
	}
	if derr := s.drain(behind); derr != nil {
		return nil, derr
	}
	return nil, pe
}

// drain reads off and drops the replies to the RETRs in flight.
func (s *pop3Session) drain(queue []slot) error {
	for _, sl := range queue {
		if sl.num == "" {
			continue
		}
		if _, err := s.status("RETR " + sl.num); err != nil {
			if isPOP3Err(err) {
				continue
			}
			return err
		}
		if err := readBlock(s.r, io.Discard); err != nil {
			return &NetError{Op: "POP3 RETR " + sl.num, Err: err}
		}
	}
	return nil
}
