-- SQLite dialect of ../postgres/ (the embedded default database): same tables,
-- columns and meanings; INTEGER PRIMARY KEY for identity, timestamp and blob
-- for timestamptz and bytea.
-- Mailboxes are written by admins (SQL, seed file or CLI) and read by every
-- run; the state columns (tokens, status, errors) are written by the fetcher.
-- The column names are a public contract (shared SCHEMA.md): admins' SQL
-- depends on them. Values are validated by the fetcher, not by CHECK
-- constraints, so a bad row gets an actionable last_error instead of a bare
-- constraint violation at insert time, and new values need no migration.
CREATE TABLE mailboxes (
    id                       INTEGER PRIMARY KEY AUTOINCREMENT,
    name                     text NOT NULL UNIQUE,
    protocol                 text NOT NULL,
    host                     text NOT NULL,
    port                     integer NOT NULL,
    use_ssl                  boolean NOT NULL DEFAULT true,
    starttls                 boolean NOT NULL DEFAULT false,
    username                 text NOT NULL,
    auth_type                text NOT NULL DEFAULT 'oauth2',
    password                 text,
    oauth_provider           text,
    oauth_grant              text NOT NULL DEFAULT 'refresh_token',
    tenant_id                text,
    client_id                text,
    client_secret            text,
    redirect_url             text,
    scopes                   text,
    authority_url            text,
    auth_url                 text,
    token_url                text,
    refresh_token            text,
    access_token             text,
    access_token_expires_at  timestamp,
    refresh_before_seconds   integer NOT NULL DEFAULT 300,
    client_secret_expires_at timestamp,
    folder                   text NOT NULL DEFAULT 'INBOX',
    after_fetch              text NOT NULL DEFAULT 'mark_seen',
    move_to_folder           text,
    enabled                  boolean NOT NULL DEFAULT true,
    status                   text NOT NULL DEFAULT 'active',
    last_error               text,
    last_error_at            timestamp,
    last_success_at          timestamp,
    created_at               timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at               timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP
);
