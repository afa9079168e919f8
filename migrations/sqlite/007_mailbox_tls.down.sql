-- Drops the per-mailbox transport settings.
ALTER TABLE mailboxes DROP COLUMN allow_plaintext;
ALTER TABLE mailboxes DROP COLUMN tls_skip_verify;
ALTER TABLE mailboxes DROP COLUMN tls_ca_cert;
