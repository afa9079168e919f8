package mailbox

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// pipelineBatch bounds how many DELEs go out before their replies are
// read, so neither side's socket buffer fills while the other waits on it
// (RFC 2449 section 6.6 asks clients to keep that in mind).
const pipelineBatch = 100

// Apply marks the messages named by keys for deletion with DELE (RFC 1939
// section 6). The server deletes them when Close sends QUIT, so none is
// done yet and Apply returns no keys for Delete; a connection lost before
// QUIT deletes nothing. Keys this session did not list, or already
// marked, are skipped. Keep needs nothing and returns keys; POP3 has no
// flags and no folders, so other actions are errors.
func (s *pop3Session) Apply(ctx context.Context, action Action, _ string, keys []string) ([]string, error) {
	switch action {
	case Keep:
		return keys, nil
	case Delete:
	default:
		return nil, fmt.Errorf("after_fetch %q: POP3 supports only keep and delete", action)
	}
	err := s.run(ctx, func() error {
		var nums []uint32
		for _, k := range keys {
			n, ok, err := s.number(k)
			if err != nil {
				return err
			}
			if ok && !s.ambiguous[k] {
				nums = append(nums, n)
			}
		}
		return s.dele(nums)
	})
	return nil, err
}

// dele sends DELE for each number: in batches when the server offers
// PIPELINING (RFC 2449 section 6.6), all of a batch written before its
// replies are read, otherwise one at a time. A refused DELE does not stop
// the others; the refusals are returned together.
func (s *pop3Session) dele(nums []uint32) error {
	batch := 1
	if _, ok := s.caps["PIPELINING"]; ok {
		batch = pipelineBatch
	}
	var refused []error
	for len(nums) > 0 {
		chunk := nums[:min(batch, len(nums))]
		nums = nums[len(chunk):]
		lines := make([]string, len(chunk))
		for i, n := range chunk {
			lines[i] = "DELE " + strconv.FormatUint(uint64(n), 10)
		}
		if err := s.send("DELE", lines...); err != nil {
			return err
		}
		for i, n := range chunk {
			_, err := s.status(lines[i])
			switch {
			case err == nil:
				s.marked[n] = true
			case isPOP3Err(err):
				refused = append(refused, err)
			default:
				return err
			}
		}
	}
	return errors.Join(refused...)
}
