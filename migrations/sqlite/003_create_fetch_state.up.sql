-- SQLite dialect of ../postgres/ (the embedded default database): same tables,
-- columns and meanings; INTEGER PRIMARY KEY for identity, timestamp and blob
-- for timestamptz and bytea.
-- Fetcher bookkeeping. fetch_runs is for admins (shared SCHEMA.md).
-- mailbox_cursors remembers, per mailbox and IMAP folder, the UIDVALIDITY and
-- the highest UID whose rows are committed, so a run asks the server only
-- for newer UIDs and never relies on \Seen (RFC 9051 section 2.3.1.1).
-- fetched_messages is the ledger of every source key ever fetched, stored or
-- skipped as a duplicate, with the after-fetch action still owed to the
-- server: the action is applied only after the rows commit, and an action
-- interrupted by a crash is retried on the next run.
CREATE TABLE fetch_runs (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id         bigint REFERENCES mailboxes (id) ON DELETE CASCADE,
    started_at         timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    finished_at        timestamp,
    messages_fetched   integer NOT NULL DEFAULT 0,
    tickets_created    integer NOT NULL DEFAULT 0,
    messages_appended  integer NOT NULL DEFAULT 0,
    messages_skipped   integer NOT NULL DEFAULT 0,
    error              text
);
CREATE INDEX fetch_runs_mailbox_started_idx ON fetch_runs (mailbox_id, started_at);

CREATE TABLE mailbox_cursors (
    mailbox_id    bigint NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    folder        text NOT NULL,
    uid_validity  bigint NOT NULL,
    last_uid      bigint NOT NULL DEFAULT 0,
    updated_at    timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (mailbox_id, folder)
);

CREATE TABLE fetched_messages (
    mailbox_id         bigint NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    source_key         text NOT NULL,
    ticket_message_id  bigint REFERENCES ticket_messages (id) ON DELETE SET NULL,
    outcome            text NOT NULL,
    action             text NOT NULL,
    action_done_at     timestamp,
    fetched_at         timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (mailbox_id, source_key)
);
CREATE INDEX fetched_messages_pending_idx ON fetched_messages (mailbox_id)
    WHERE action_done_at IS NULL;
