package main

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fetcherhq/fetcher/internal/fetch"
	"github.com/fetcherhq/fetcher/internal/store"
)

// Values of --progress / FETCHER_PROGRESS.
const (
	progressAuto   = "auto"
	progressAlways = "always"
	progressNever  = "never"
)

// redrawEvery bounds the redraws of the progress block to ten a second:
// more only costs the terminal time, and a pass can store hundreds of
// messages a second.
const redrawEvery = 100 * time.Millisecond

// Bounds of the progress block. More lines than the terminal is high
// cannot be lifted again (the cursor stops at the top), and a name longer
// than a column would push the numbers off a narrow screen.
const (
	maxProgressLines = 8
	maxNameWidth     = 24
)

// progressWanted decides whether `run` draws live progress: when asked
// to, or by default on a terminal whose log format was left to auto. A
// pipe, a file, a service manager or an explicit log format means log
// lines only, whole and in order, for whatever reads them.
func progressWanted(mode, logFormat string, terminal bool) bool {
	switch mode {
	case progressAlways:
		return true
	case progressNever:
		return false
	}
	return terminal && logFormat == "auto"
}

// progressView draws one line per mailbox being fetched at the bottom of
// a terminal, redrawn in place, and a summary line for each as it ends.
// It owns the terminal: log lines (and protocol trace lines) are written
// through it, and each write lifts the block, writes the whole lines and
// puts the block back, so that neither garbles the other. It is a
// fetch.Progress, safe for concurrent mailboxes.
type progressView struct {
	mu    sync.Mutex
	w     io.Writer
	now   func() time.Time
	boxes []*boxProgress // being fetched, in the order they started
	shown int            // lines of the block now on screen
	drawn time.Time      // when the block was last drawn
	// partial is the unfinished last line of a log write, held back
	// until its newline: a block drawn after half a line would split it.
	partial []byte
	buf     bytes.Buffer // what one update writes, in a single Write
}

var _ fetch.Progress = (*progressView)(nil)

// boxProgress is one mailbox's line.
type boxProgress struct {
	fetch.ProgressMailbox
	start         time.Time
	total         int // -1 until its messages are listed
	done, created int
}

func newProgressView(w io.Writer, now func() time.Time) *progressView {
	return &progressView{w: w, now: now}
}

// run redraws the block about every redrawEvery, so that the time on each
// line moves on while a server keeps the fetcher waiting, until stop is
// called; stop also clears the block and writes what a log write left
// unfinished. It ticks twice as often as it may redraw: at the same rate,
// a tick a hair early would be throttled and the redraw wait a whole
// tick more.
func (v *progressView) run() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(redrawEvery / 2)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				v.refresh()
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		v.close()
	}
}

// MailboxStarted adds a line for mb.
func (v *progressView) MailboxStarted(mb fetch.ProgressMailbox) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.boxes = append(v.boxes, &boxProgress{ProgressMailbox: mb, start: v.now(), total: -1})
	v.update()
}

// MailboxTotal sets how many messages the mailbox's line counts up to.
func (v *progressView) MailboxTotal(id int64, total int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if b := v.find(id); b != nil {
		b.total = total
		v.update()
	}
}

// MessageDone moves the mailbox's line on.
func (v *progressView) MessageDone(id int64, done, created int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if b := v.find(id); b != nil {
		b.done, b.created = done, created
		v.update()
	}
}

// MailboxEnded replaces the mailbox's line by its summary, which stays.
func (v *progressView) MailboxEnded(id int64, outcome string, run store.Run, took time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	i := v.index(id)
	if i < 0 {
		return
	}
	b := v.boxes[i]
	v.boxes = slices.Delete(v.boxes, i, i+1)
	v.buf.Reset()
	v.lift()
	v.buf.WriteString(b.summary(outcome, run, took))
	v.buf.WriteByte('\n')
	v.putIfDue()
	_ = v.flush() // as in update: the display is not worth failing the pass for
}

// Write writes the whole lines of p above the block; a last line without
// its newline waits for the rest. A log handler writes a line at a time,
// but the protocol trace may not.
func (v *progressView) Write(p []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.partial = append(v.partial, p...)
	end := bytes.LastIndexByte(v.partial, '\n') + 1
	if end == 0 {
		return len(p), nil
	}
	v.buf.Reset()
	v.lift()
	v.buf.Write(v.partial[:end])
	v.partial = append(v.partial[:0], v.partial[end:]...)
	v.putIfDue()
	// p is taken whole, held back or written; an error is the terminal's.
	return len(p), v.flush()
}

// refresh redraws the block, for the times on its lines.
func (v *progressView) refresh() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.boxes) > 0 {
		v.update()
	}
}

// close clears the block and writes out a held partial line.
func (v *progressView) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.buf.Reset()
	v.lift()
	if len(v.partial) > 0 {
		v.buf.Write(v.partial)
		v.buf.WriteByte('\n')
		v.partial = nil
	}
	_ = v.flush() // the last write: there is nobody left to tell of its failure
}

// update redraws the block unless it was drawn less than redrawEvery ago.
// A change skipped here shows at the next update or refresh.
func (v *progressView) update() {
	if v.now().Sub(v.drawn) < redrawEvery {
		return
	}
	v.buf.Reset()
	v.lift()
	v.put()
	_ = v.flush() // a progress display that cannot be written is not worth failing the pass for
}

// putIfDue puts the block back after a lift unless it was drawn less than
// redrawEvery ago; then the next update or refresh does.
func (v *progressView) putIfDue() {
	if v.now().Sub(v.drawn) >= redrawEvery {
		v.put()
	}
}

// lift moves the cursor up to the block's first line and erases from
// there to the end of the screen (ECMA-48 CUU and ED).
func (v *progressView) lift() {
	if v.shown > 0 {
		fmt.Fprintf(&v.buf, "\r\x1b[%dA\x1b[J", v.shown)
		v.shown = 0
	}
}

// put draws the block below the cursor. Automatic wrap is off meanwhile
// (DECAWM): a line wider than the terminal is cut at its edge instead of
// taking two lines, which lift would not know to erase.
func (v *progressView) put() {
	if len(v.boxes) == 0 {
		return
	}
	now := v.now()
	shown := v.boxes[:min(len(v.boxes), maxProgressLines)]
	width := nameWidth(shown)
	v.buf.WriteString("\x1b[?7l")
	for _, b := range shown {
		v.buf.WriteString(b.line(now, width))
		v.buf.WriteByte('\n')
	}
	v.shown = len(shown)
	if more := len(v.boxes) - len(shown); more > 0 {
		fmt.Fprintf(&v.buf, "… and %d more mailboxes\n", more)
		v.shown++
	}
	v.buf.WriteString("\x1b[?7h")
	v.drawn = now
}

func (v *progressView) flush() error {
	if v.buf.Len() == 0 {
		return nil
	}
	_, err := v.w.Write(v.buf.Bytes())
	return err
}

func (v *progressView) find(id int64) *boxProgress {
	if i := v.index(id); i >= 0 {
		return v.boxes[i]
	}
	return nil
}

func (v *progressView) index(id int64) int {
	for i, b := range v.boxes {
		if b.ID == id {
			return i
		}
	}
	return -1
}

// line is the mailbox's live line, such as
// "helpdesk  imap  37/120 messages  5 new tickets  3.2s".
func (b *boxProgress) line(now time.Time, width int) string {
	var s strings.Builder
	fmt.Fprintf(&s, "%s  %-4s  ", pad(displayName(b.Name), width), displayName(b.Protocol))
	if b.total < 0 {
		s.WriteString("connecting")
	} else {
		fmt.Fprintf(&s, "%d/%d messages  %s", b.done, b.total, plural(b.created, "new ticket", "new tickets"))
	}
	fmt.Fprintf(&s, "  %s", elapsed(now.Sub(b.start)))
	return s.String()
}

// summary is the line that stays once the mailbox ended, such as
// "helpdesk  imap  ok  120/120 messages  5 new tickets  2 replies  3.2s".
func (b *boxProgress) summary(outcome string, run store.Run, took time.Duration) string {
	var s strings.Builder
	fmt.Fprintf(&s, "%s  %s  %s", displayName(b.Name), displayName(b.Protocol), outcome)
	if b.total >= 0 {
		fmt.Fprintf(&s, "  %d/%d messages  %s", b.done, b.total, plural(run.TicketsCreated, "new ticket", "new tickets"))
	}
	if run.MessagesAppended > 0 {
		fmt.Fprintf(&s, "  %s", plural(run.MessagesAppended, "reply", "replies"))
	}
	if run.MessagesSkipped > 0 {
		fmt.Fprintf(&s, "  %d skipped", run.MessagesSkipped)
	}
	fmt.Fprintf(&s, "  %s", elapsed(took))
	return s.String()
}

// displayName is a name from a mailbox row fit for a terminal line:
// control characters, which could move the cursor or end the line, become
// "?", and a long name is cut short.
func displayName(name string) string {
	clean := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, name)
	if utf8.RuneCountInString(clean) <= maxNameWidth {
		return clean
	}
	return string([]rune(clean)[:maxNameWidth-1]) + "…"
}

// nameWidth is the width of the longest name shown, for aligned columns.
func nameWidth(boxes []*boxProgress) int {
	w := 0
	for _, b := range boxes {
		w = max(w, utf8.RuneCountInString(displayName(b.Name)))
	}
	return w
}

func pad(s string, width int) string {
	return s + strings.Repeat(" ", max(width-utf8.RuneCountInString(s), 0))
}

// elapsed is "3.2s" under a minute, "4m05s" above.
func elapsed(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	d = d.Round(time.Second)
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}
