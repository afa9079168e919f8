package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fetcherhq/fetcher/internal/fetch"
	"github.com/fetcherhq/fetcher/internal/notify"
	"github.com/fetcherhq/fetcher/internal/store"
)

// Plan is what provisioning will write: each mailbox and ticket type with
// the settings that change. Nothing is written until Apply.
type Plan struct {
	Mailboxes   []store.MailboxWrite
	TicketTypes []store.TicketTypeWrite
	// Next are the steps left to the admin, e.g. signing a mailbox in.
	Next []string
}

// Planner builds plans against a database.
type Planner struct {
	DB *store.DB
	// Now is the clock certificate credentials are checked against; nil
	// means time.Now.
	Now func() time.Time
	// mailboxes known to this plan by name, for the ticket types.
	planned map[string]bool
	// seeding: a seed file is applied on every deploy, so it must not
	// put back a refresh token the provider has rotated since.
	seeding bool
}

// PlanFile plans a seed file: every entry is checked before anything is
// written, and the first error names the file and line.
func (p *Planner) PlanFile(ctx context.Context, f *File) (*Plan, error) {
	plan := &Plan{}
	p.seeding = true
	for _, e := range f.Mailboxes {
		w, note, err := p.mailbox(ctx, e.Name, e)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: mailbox %q: %w", f.Path, e.Line, e.Name, err)
		}
		plan.addMailbox(w, note)
	}
	for _, e := range f.TicketTypes {
		w, err := p.ticketType(ctx, e)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: ticket type %q: %w", f.Path, e.Line, e.Name, err)
		}
		plan.TicketTypes = append(plan.TicketTypes, w)
	}
	return plan, nil
}

// PlanMailbox plans one mailbox: a new one when create, else the changes
// to the mailbox named ref (e holds its new name, if renamed).
func (p *Planner) PlanMailbox(ctx context.Context, ref string, e Entry, create bool) (*Plan, error) {
	existing, unreadable, err := p.existing(ctx, ref)
	switch {
	case err != nil:
		return nil, err
	case create && existing != nil:
		return nil, fmt.Errorf("a mailbox named %q exists already: change it with fetcher mailbox set", ref)
	case !create && existing == nil:
		return nil, fmt.Errorf("no mailbox is named %q: add it with fetcher mailbox add", ref)
	}
	if e.Name != ref && !create {
		if other, _, err := p.existing(ctx, e.Name); err != nil || other != nil {
			return nil, errors.Join(err, fmt.Errorf("name: another mailbox is named %q already", e.Name))
		}
	}
	w, err := p.build(existing, e)
	if err != nil {
		return nil, fmt.Errorf("mailbox %q: %w", e.Name, err)
	}
	plan := &Plan{}
	plan.addMailbox(w, unreadableNote(w, unreadable))
	return plan, nil
}

func (plan *Plan) addMailbox(w store.MailboxWrite, note string) {
	plan.Mailboxes = append(plan.Mailboxes, w)
	for _, step := range []string{note, nextStep(w)} {
		if step != "" {
			plan.Next = append(plan.Next, step)
		}
	}
}

// mailbox plans the mailbox named name from e, with a note on a secret
// that could not be read.
func (p *Planner) mailbox(ctx context.Context, name string, e Entry) (store.MailboxWrite, string, error) {
	existing, unreadable, err := p.existing(ctx, name)
	if err != nil {
		return store.MailboxWrite{}, "", err
	}
	w, err := p.build(existing, e)
	if err == nil {
		if p.planned == nil {
			p.planned = map[string]bool{}
		}
		p.planned[w.Mailbox.Name] = true
	}
	return w, unreadableNote(w, unreadable), err
}

// existing returns the stored mailbox named name, or nil, and the secret
// column that could not be decrypted, if any (it reads as empty).
func (p *Planner) existing(ctx context.Context, name string) (*store.Mailbox, string, error) {
	mb, unreadable, err := p.DB.Mailboxes().Inspect(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, "", nil
	case err != nil:
		return nil, "", err
	}
	return &mb, unreadable, nil
}

// unreadableNote tells the admin of a stored secret the configured keys
// cannot open, unless this plan stores it again.
func unreadableNote(w store.MailboxWrite, column string) string {
	if column == "" || slices.Contains(w.Columns, column) {
		return ""
	}
	return fmt.Sprintf("mailbox %q: its %s cannot be decrypted with the configured keys (docs/security.md): give it again",
		w.Mailbox.Name, column)
}

// NewMailbox is a mailbox with the schema's defaults.
func NewMailbox() store.Mailbox {
	m := store.Mailbox{UseSSL: true, Enabled: true}
	store.MailboxDefaults(&m)
	return m
}

// build applies e's settings to a copy of existing (or a new mailbox) and
// checks the result as a pass would.
func (p *Planner) build(existing *store.Mailbox, e Entry) (store.MailboxWrite, error) {
	before := NewMailbox()
	if existing != nil {
		before = *existing
	}
	after := before
	for _, s := range e.Settings {
		f, _ := FieldByKey(s.Key)
		if s.Key == "refresh_token" && p.seeding && before.RefreshToken != "" {
			// The provider rotates it; the stored one is newer than the
			// file's (fetcher mailbox set replaces it on purpose).
			continue
		}
		if err := f.Set(&after, s.Text); err != nil {
			return store.MailboxWrite{}, fmt.Errorf("%s: %w", s.Key, err)
		}
	}
	store.MailboxDefaults(&after)
	defaultPort(&after)
	w := store.MailboxWrite{Mailbox: after, Create: existing == nil}
	for _, f := range Fields {
		_, set := e.Value(f.Key)
		changed := !same(f.Get(&before), f.Get(&after))
		if changed || (w.Create && (set || f.Key == "port")) {
			w.Columns = append(w.Columns, f.Key)
			w.DropTokens = w.DropTokens || (changed && !w.Create && (f.Identity || f.Key == "refresh_token"))
			// Another server's, account's or protocol's UIDs mean nothing
			// against the stored cursor, even under the same UIDVALIDITY.
			w.ForgetCursors = w.ForgetCursors || (changed && !w.Create && slices.Contains(cursorKeys, f.Key))
		}
	}
	if len(w.Columns) == 0 || slices.Equal(w.Columns, []string{"enabled"}) && !after.Enabled {
		// Unchanged, or only switched off: a broken row may always be
		// left alone or disabled.
		return w, nil
	}
	return w, p.validate(after)
}

// cursorKeys are the settings whose change makes the stored cursor
// another mailbox's.
var cursorKeys = []string{"protocol", "host", "username"}

// same compares two field values; times by instant.
func same(a, b any) bool {
	if ta, ok := a.(time.Time); ok {
		return ta.Equal(b.(time.Time))
	}
	return a == b
}

// defaultPort fills the protocol's well-known port (RFC 8314 section 7
// for the implicit TLS ones).
func defaultPort(m *store.Mailbox) {
	if m.Port != 0 {
		return
	}
	ports := map[string][2]int{"imap": {143, 993}, "pop3": {110, 995}}
	if p, ok := ports[m.Protocol]; ok && m.UseSSL {
		m.Port = p[1]
	} else if ok {
		m.Port = p[0]
	}
}

// validate checks a mailbox as the worker will, so a seed never stores a
// row that the first pass would reject.
func (p *Planner) validate(m store.Mailbox) error {
	if strings.TrimSpace(m.Name) == "" {
		return errors.New("name is empty")
	}
	if err := fetch.Validate(m); err != nil {
		return err
	}
	if err := fetch.ValidateSMTP(m); err != nil {
		return err
	}
	if m.AuthType == "oauth2" {
		now := time.Now
		if p.Now != nil {
			now = p.Now
		}
		return fetch.OAuthConfig(m).ValidateAt(now())
	}
	return nil
}

// nextStep is what the admin must still do for a mailbox to work.
func nextStep(w store.MailboxWrite) string {
	m := w.Mailbox
	if m.AuthType != "oauth2" || m.RefreshToken != "" || !m.Enabled ||
		fetch.OAuthConfig(m).Grant == "client_credentials" {
		return ""
	}
	return fmt.Sprintf("sign mailbox %q in once: fetcher authorize %s", m.Name, shellWord(m.Name))
}

// shellWord quotes a name for a command line when it needs it.
func shellWord(s string) string {
	plain := func(r rune) bool {
		return r == '-' || r == '_' || r == '.' || r == '@' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
	}
	if s != "" && strings.IndexFunc(s, func(r rune) bool { return !plain(r) }) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ticketType plans a ticket type; its mailbox must exist or be planned.
func (p *Planner) ticketType(ctx context.Context, e Entry) (store.TicketTypeWrite, error) {
	w := store.TicketTypeWrite{Create: true}
	before := store.TicketType{Name: e.Name, Task: "simple_storage", NotifyNew: true}
	existingMailbox := ""
	old, err := p.DB.TicketTypeByName(ctx, e.Name)
	switch {
	case err == nil:
		before, w.Create = old, false
		if old.MailboxID != nil {
			if existingMailbox, err = p.DB.MailboxName(ctx, *old.MailboxID); err != nil {
				return w, err
			}
		}
	case !errors.Is(err, store.ErrNotFound):
		return w, err
	}
	after, mailbox, err := applyTicketType(before, existingMailbox, e)
	if err != nil {
		return w, err
	}
	if mailbox != "" && !p.planned[mailbox] {
		if _, err := p.DB.Mailboxes().GetByName(ctx, mailbox); err != nil {
			return w, fmt.Errorf("mailbox: no mailbox is named %q (declare it under mailboxes: or add it first)", mailbox)
		}
	}
	w.TicketType, w.MailboxName = after, mailbox
	w.Columns = ticketTypeChanges(before, after, existingMailbox, mailbox, w.Create)
	return w, nil
}

// applyTicketType sets e's values on t; mailbox is the feeding mailbox's
// name, as stored (current) or as set.
func applyTicketType(t store.TicketType, current string, e Entry) (store.TicketType, string, error) {
	mailbox := current
	for _, s := range e.Settings {
		var err error
		switch s.Key {
		case "task":
			t.Task = s.Text
		case "mailbox":
			mailbox = s.Text
		case "admin_email":
			t.AdminEmail = strings.TrimSpace(s.Text)
			if t.AdminEmail != "" {
				_, err = notify.AdminAddresses(t.AdminEmail)
			}
		case "notify_new":
			t.NotifyNew = true // the column's default, for an empty value
			if strings.TrimSpace(s.Text) != "" {
				t.NotifyNew, err = parseBool(s.Text)
			}
		case "notify_replies":
			t.NotifyReplies, err = parseBool(s.Text)
		case "acknowledge":
			t.Acknowledge, err = parseBool(s.Text)
		case "ack_text":
			t.AckText = s.Text
		}
		if err != nil {
			return t, "", fmt.Errorf("%s: %w", s.Key, err)
		}
	}
	if strings.TrimSpace(t.Task) == "" {
		t.Task = "simple_storage"
	}
	return t, mailbox, nil
}

func ticketTypeChanges(a, b store.TicketType, mailboxA, mailboxB string, create bool) []string {
	var cols []string
	add := func(col string, changed bool) {
		if changed || create {
			cols = append(cols, col)
		}
	}
	add("name", a.Name != b.Name)
	add("task", a.Task != b.Task)
	add("mailbox_id", mailboxA != mailboxB)
	add("admin_email", a.AdminEmail != b.AdminEmail)
	add("notify_new", a.NotifyNew != b.NotifyNew)
	add("notify_replies", a.NotifyReplies != b.NotifyReplies)
	add("acknowledge", a.Acknowledge != b.Acknowledge)
	add("ack_text", a.AckText != b.AckText)
	return cols
}

// Apply writes the plan in one transaction.
func (plan *Plan) Apply(ctx context.Context, db *store.DB) error {
	return db.Provision(ctx, plan.Mailboxes, plan.TicketTypes)
}
