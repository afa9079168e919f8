-- Drops the certificate credential and the backoff and warning state.
ALTER TABLE mailboxes DROP COLUMN warning;
ALTER TABLE mailboxes DROP COLUMN reauth_fingerprint;
ALTER TABLE mailboxes DROP COLUMN consecutive_failures;
ALTER TABLE mailboxes DROP COLUMN next_attempt_at;
ALTER TABLE mailboxes DROP COLUMN client_private_key;
ALTER TABLE mailboxes DROP COLUMN client_certificate;
