-- SQLite dialect of ../postgres/008_outbox.up.sql.
-- Sending mail (issue 8): notifications to a ticket type's admin_email and
-- acknowledgements to requesters, through the mailbox's own account.
--
-- mailboxes: smtp_enabled is the switch (off by default, so an upgrade sends
-- nothing until an admin turns it on). smtp_host/port/security default by
-- provider (Microsoft smtp.office365.com:587 STARTTLS, Google
-- smtp.gmail.com:465 TLS); smtp_security is 'starttls', 'tls' or 'none'
-- (NULL: 'tls' on port 465, else 'starttls'). smtp_username logs in (NULL:
-- username); smtp_from / smtp_from_name are the From of sent mail (NULL:
-- username, no name). smtp_scopes are the token's scopes for sending (NULL:
-- the provider's default, e.g. Microsoft's SMTP.Send). smtp_access_token is
-- a cache like access_token (encrypted when a key is set). The smtp_last_*
-- columns report sending on its own: a refused SMTP login never marks the
-- fetching as failing.
ALTER TABLE mailboxes ADD COLUMN smtp_enabled boolean NOT NULL DEFAULT false;
ALTER TABLE mailboxes ADD COLUMN smtp_host text;
ALTER TABLE mailboxes ADD COLUMN smtp_port integer;
ALTER TABLE mailboxes ADD COLUMN smtp_security text;
ALTER TABLE mailboxes ADD COLUMN smtp_username text;
ALTER TABLE mailboxes ADD COLUMN smtp_from text;
ALTER TABLE mailboxes ADD COLUMN smtp_from_name text;
ALTER TABLE mailboxes ADD COLUMN smtp_scopes text;
ALTER TABLE mailboxes ADD COLUMN smtp_access_token text;
ALTER TABLE mailboxes ADD COLUMN smtp_access_token_expires_at timestamp;
ALTER TABLE mailboxes ADD COLUMN smtp_last_error text;
ALTER TABLE mailboxes ADD COLUMN smtp_last_error_at timestamp;
ALTER TABLE mailboxes ADD COLUMN smtp_last_success_at timestamp;

-- ticket_types: what to send. admin_email (seed 001's "Admin Email") is
-- told of each new ticket (notify_new) and, when notify_replies, of each
-- reply; acknowledge sends the requester a mail carrying the ticket tag
-- "[#123]"; ack_text replaces its default body ({ticket}, {subject} and
-- {name} are filled in).
ALTER TABLE ticket_types ADD COLUMN notify_new boolean NOT NULL DEFAULT true;
ALTER TABLE ticket_types ADD COLUMN notify_replies boolean NOT NULL DEFAULT false;
ALTER TABLE ticket_types ADD COLUMN acknowledge boolean NOT NULL DEFAULT false;
ALTER TABLE ticket_types ADD COLUMN ack_text text;

-- outbox: a transactional outbox. Each row is written in the transaction
-- that stores the message it is about, so a crash never loses one, and is
-- sent by the worker afterwards, marked sent once the server accepted it.
-- status: 'pending' (to send at next_attempt_at), 'sent', 'failed' (given
-- up: last_error says why) or 'suppressed' (never sent: last_error says why,
-- e.g. the message was an auto-reply). message_id is the Message-ID the mail
-- carries, the same on every attempt, so a resend after a crash is
-- recognisable, and mail of ours coming back is never answered.
-- recipient_key is the recipient in lower case (Unicode, folded by the
-- fetcher: SQL lower() folds only ASCII in SQLite and C-locale Postgres),
-- for the per-requester rate limit of acknowledgements.
CREATE TABLE outbox (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id         bigint NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    ticket_id          bigint REFERENCES tickets (id) ON DELETE CASCADE,
    ticket_message_id  bigint REFERENCES ticket_messages (id) ON DELETE CASCADE,
    kind               text NOT NULL,
    recipient          text NOT NULL,
    recipient_key      text NOT NULL,
    subject            text NOT NULL,
    body_text          text NOT NULL,
    message_id         text NOT NULL UNIQUE,
    in_reply_to        text,
    references_header  text,
    status             text NOT NULL DEFAULT 'pending',
    attempts           integer NOT NULL DEFAULT 0,
    next_attempt_at    timestamp,
    last_error         text,
    smtp_reply         text,
    created_at         timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at         timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    sent_at            timestamp
);
CREATE INDEX outbox_due_idx ON outbox (mailbox_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_recipient_idx ON outbox (mailbox_id, kind, recipient_key, created_at);
CREATE INDEX outbox_ticket_idx ON outbox (ticket_id);
CREATE INDEX outbox_ticket_message_idx ON outbox (ticket_message_id);
