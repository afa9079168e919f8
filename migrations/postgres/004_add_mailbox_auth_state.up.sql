-- OAuth hardening (issue 3).
-- client_certificate / client_private_key: a certificate credential (PEM),
-- which Microsoft recommends over client secrets; the fetcher signs a client
-- assertion (RFC 7523) with the key instead of sending a secret.
-- next_attempt_at / consecutive_failures: a failing mailbox backs off
-- (exponential, capped, honouring the provider's Retry-After) instead of
-- hammering a provider that throttles; the time is visible to admins.
-- reauth_fingerprint: a digest of the credentials that a needs_reauth
-- mailbox had when it was refused; it is retried only once they change, so a
-- dead refresh token is not replayed every ten minutes.
-- warning: something an admin should act on before it breaks, e.g. a client
-- secret that expires within 30 days.
ALTER TABLE mailboxes ADD COLUMN client_certificate text;
ALTER TABLE mailboxes ADD COLUMN client_private_key text;
ALTER TABLE mailboxes ADD COLUMN next_attempt_at timestamptz;
ALTER TABLE mailboxes ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN reauth_fingerprint text;
ALTER TABLE mailboxes ADD COLUMN warning text;
