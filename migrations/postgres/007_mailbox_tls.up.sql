-- Transport security per mailbox (issue 7).
-- tls_ca_cert: PEM certificates to trust for this mailbox's server, on top
-- of the system's and FETCHER_CA_FILE (a private server with an in-house
-- CA). tls_skip_verify: accept any certificate; logged as a warning at
-- every run, for a test server only. allow_plaintext: let a mailbox with
-- use_ssl and starttls both false send its credentials unencrypted; for a
-- local test server only.
ALTER TABLE mailboxes ADD COLUMN tls_ca_cert text;
ALTER TABLE mailboxes ADD COLUMN tls_skip_verify boolean NOT NULL DEFAULT false;
ALTER TABLE mailboxes ADD COLUMN allow_plaintext boolean NOT NULL DEFAULT false;
