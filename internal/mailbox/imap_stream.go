package mailbox

import (
	"context"
	"errors"
	"fmt"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Stream fetches msgs with one UID FETCH of BODY.PEEK[] for the whole set
// (RFC 9051 section 6.4.5): the server streams them back to back, so a
// batch costs one round trip, not one per message. Each literal is read
// and handed to got before the next one is read off the connection.
//
// Servers answer in UID order, whatever the order of the set. So that got
// still sees msgs in their order without Stream holding the batch in
// memory, msgs in another order (or with a UID twice) are fetched with one
// UID FETCH per ascending run; a batch from List is one run.
func (s *imapSession) Stream(ctx context.Context, msgs []Message, got func(Message, []byte, error) error) error {
	if len(msgs) == 0 {
		return nil
	}
	got = s.unbounded(got)
	return s.run(ctx, func() error {
		for len(msgs) > 0 {
			n := ascending(msgs)
			if err := s.stream(msgs[:n], got); err != nil {
				return err
			}
			msgs = msgs[n:]
		}
		return nil
	})
}

// ascending returns the length of the run of strictly ascending UIDs that
// starts msgs.
func ascending(msgs []Message) int {
	n := 1
	for n < len(msgs) && msgs[n].UID > msgs[n-1].UID {
		n++
	}
	return n
}

// unbounded runs got with the command deadline off, and arms it afresh
// once got returns. The deadline bounds the server, not got: got may wait
// as long as it likes (for the database, say), and that wait would
// otherwise use up the deadline and fail the next read from a server that
// did nothing wrong.
func (s *imapSession) unbounded(got func(Message, []byte, error) error) func(Message, []byte, error) error {
	return func(msg Message, raw []byte, err error) error {
		s.conn.disarm()
		defer s.conn.arm()
		return got(msg, raw, err)
	}
}

// streamed is a message read off the connection: its bytes, or why not.
type streamed struct {
	raw []byte
	err error
}

// streamState delivers fetched messages to got in the order of msgs,
// holding back any that a server sends out of order until those before
// them have come or are known to be gone.
type streamState struct {
	msgs    []Message
	byUID   map[uint32]int   // index in msgs
	early   map[int]streamed // arrived before their turn
	arrived map[int]bool
	next    int
	got     func(Message, []byte, error) error
}

func (s *imapSession) stream(msgs []Message, got func(Message, []byte, error) error) error {
	st := &streamState{msgs: msgs, byUID: map[uint32]int{}, early: map[int]streamed{}, arrived: map[int]bool{}, got: got}
	var set imap.UIDSet
	for i, m := range msgs {
		st.byUID[m.UID] = i
		set.AddNum(imap.UID(m.UID))
	}
	cmd := s.c.Fetch(set, &imap.FetchOptions{
		UID:         true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	})
	defer func() { _ = cmd.Close() }() // on early return: reads the rest of the response
	for m := cmd.Next(); m != nil; m = cmd.Next() {
		if err := s.streamOne(st, m); err != nil {
			return err
		}
	}
	if err := cmd.Close(); err != nil {
		return &NetError{Op: fmt.Sprintf("fetch %d messages", len(msgs)), Err: err}
	}
	return s.streamRest(st)
}

// streamOne reads one FETCH response and passes on what is due.
func (s *imapSession) streamOne(st *streamState, m *imapclient.FetchMessageData) error {
	var uid uint32
	var raw []byte
	var tooLarge *TooLargeError
	found := false
	for item := m.Next(); item != nil; item = m.Next() {
		switch item := item.(type) {
		case imapclient.FetchItemDataUID:
			uid = uint32(item.UID)
		case imapclient.FetchItemDataBodySection:
			if item.Literal == nil {
				continue
			}
			msg, known := st.msg(uid)
			if !known {
				// The UID comes before the literal from every server we know,
				// which go-imap relies on as well; without it the cap of
				// the batch's first message stands in.
				msg = st.msgs[0]
			}
			data, err := sizeCap{max: msg.MaxBytes}.read(item.Literal, msg.Size)
			if errors.As(err, &tooLarge) {
				continue // read off in full; reported below
			}
			if err != nil {
				s.abandon()
				return &NetError{Op: fmt.Sprintf("read message UID %d", uid), Err: err}
			}
			raw, found = data, true
		}
	}
	i, ok := st.byUID[uid]
	if !ok || st.arrived[i] || (!found && tooLarge == nil) {
		return nil // not asked for, a repeat, or no body: see streamRest
	}
	st.arrived[i] = true
	if tooLarge != nil {
		return st.deliver(i, nil, tooLarge)
	}
	return st.deliver(i, raw, nil)
}

// abandon closes the connection after a literal failed to read, and
// waits for go-imap's reader to stop. go-imap lets its reader go on as
// soon as a literal read fails, while the deferred cmd.Close reads that
// literal again to discard it: both would use the connection's buffered
// reader at once (a data race that can corrupt it). Once the reader has
// stopped, Close only finds errors.
func (s *imapSession) abandon() {
	_ = s.conn.Close()
	<-s.c.Closed()
}

func (st *streamState) msg(uid uint32) (Message, bool) {
	i, ok := st.byUID[uid]
	if !ok {
		return Message{}, false
	}
	return st.msgs[i], true
}

// deliver passes message i on when it is next in order, then any held
// back behind it; otherwise holds it back.
func (st *streamState) deliver(i int, raw []byte, err error) error {
	if i != st.next {
		st.early[i] = streamed{raw, err}
		return nil
	}
	if gerr := st.got(st.msgs[i], raw, err); gerr != nil {
		return gerr
	}
	st.next++
	for st.next < len(st.msgs) {
		e, ok := st.early[st.next]
		if !ok {
			return nil
		}
		delete(st.early, st.next)
		if err := st.got(st.msgs[st.next], e.raw, e.err); err != nil {
			return err
		}
		st.next++
	}
	return nil
}

// streamRest settles the messages the response did not carry, in order:
// each is gone, or the server failed to send it (see gone).
func (s *imapSession) streamRest(st *streamState) error {
	for st.next < len(st.msgs) {
		i := st.next
		if e, ok := st.early[i]; ok {
			delete(st.early, i)
			if err := st.got(st.msgs[i], e.raw, e.err); err != nil {
				return err
			}
			st.next++
			continue
		}
		err := s.gone(st.msgs[i].UID)
		if !errors.Is(err, ErrGone) {
			return err
		}
		if err := st.got(st.msgs[i], nil, err); err != nil {
			return err
		}
		st.next++
	}
	return nil
}
