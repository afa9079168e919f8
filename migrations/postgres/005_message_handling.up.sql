-- Message handling (issue 5).
-- ticket_messages.body_html_safe: body_html sanitized for display (scripts,
-- event handlers, style sheets and remote content removed; cid: and data:
-- images kept). body_html stays as sent.
-- ticket_messages.raw_truncated: the message was larger than the mailbox's
-- size limit; raw holds only its header, size_bytes its real size, and the
-- message was left on the server untouched.
-- tickets.kind: 'mail' for a ticket opened by a message; 'auto_replies'
-- for the one ticket per mailbox that collects auto-replies and bounces
-- matching no ticket (mailboxes.auto_reply_tickets = false).
-- mailboxes.auto_reply_tickets: let such auto-replies open tickets of
-- their own instead.
-- mailboxes.max_message_bytes: the size limit; NULL means the fetcher's
-- default (FETCHER_MAX_MESSAGE_BYTES).
ALTER TABLE ticket_messages ADD COLUMN body_html_safe text;
ALTER TABLE ticket_messages ADD COLUMN raw_truncated boolean NOT NULL DEFAULT false;
ALTER TABLE tickets ADD COLUMN kind text NOT NULL DEFAULT 'mail';
-- At most one collecting ticket per mailbox, even with two workers racing.
CREATE UNIQUE INDEX tickets_auto_replies_idx ON tickets (mailbox_id) WHERE kind = 'auto_replies';
ALTER TABLE mailboxes ADD COLUMN auto_reply_tickets boolean NOT NULL DEFAULT false;
ALTER TABLE mailboxes ADD COLUMN max_message_bytes bigint;
