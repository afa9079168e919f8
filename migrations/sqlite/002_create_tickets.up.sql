-- SQLite dialect of ../postgres/ (the embedded default database): same tables,
-- columns and meanings; INTEGER PRIMARY KEY for identity, timestamp and blob
-- for timestamptz and bytea.
-- The rows a ticket system reads (shared SCHEMA.md). ticket_messages holds
-- every fetched message exactly once: (mailbox_id, source_key) is unique so a
-- second run, or a crash between commit and the server-side action, can never
-- write a message twice. message_id is indexed for threading and for the
-- Message-ID duplicate guard (a server that renumbered its UIDs).
CREATE TABLE ticket_types (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         text NOT NULL UNIQUE,
    task         text NOT NULL DEFAULT 'simple_storage',
    mailbox_id   bigint REFERENCES mailboxes (id) ON DELETE SET NULL,
    admin_email  text,
    created_at   timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at   timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX ticket_types_mailbox_id_idx ON ticket_types (mailbox_id);

CREATE TABLE tickets (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_type_id   bigint REFERENCES ticket_types (id) ON DELETE SET NULL,
    mailbox_id       bigint REFERENCES mailboxes (id) ON DELETE SET NULL,
    subject          text NOT NULL,
    requester_email  text,
    requester_name   text,
    status           text NOT NULL DEFAULT 'new',
    created_at       timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at       timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_message_at  timestamp
);
CREATE INDEX tickets_mailbox_id_idx ON tickets (mailbox_id);

CREATE TABLE ticket_messages (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id          bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    mailbox_id         bigint NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    source_key         text NOT NULL,
    message_id         text,
    in_reply_to        text,
    references_header  text,
    from_email         text,
    from_name          text,
    to_addrs           text,
    cc_addrs           text,
    subject            text,
    sent_at            timestamp,
    received_at        timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    body_text          text,
    body_html          text,
    raw                blob,
    size_bytes         bigint,
    is_auto_reply      boolean NOT NULL DEFAULT false,
    parse_error        text,
    UNIQUE (mailbox_id, source_key)
);
CREATE INDEX ticket_messages_ticket_id_idx ON ticket_messages (ticket_id);
CREATE INDEX ticket_messages_message_id_idx ON ticket_messages (mailbox_id, message_id);

CREATE TABLE ticket_attachments (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_message_id  bigint NOT NULL REFERENCES ticket_messages (id) ON DELETE CASCADE,
    filename           text,
    content_type       text,
    content_id         text,
    inline             boolean NOT NULL DEFAULT false,
    size_bytes         bigint,
    sha256             text,
    data               blob
);
CREATE INDEX ticket_attachments_message_idx ON ticket_attachments (ticket_message_id);
CREATE INDEX ticket_attachments_sha256_idx ON ticket_attachments (sha256);
