-- Several workers on one database (issue 6).
-- lease_owner / lease_expires_at: the worker fetching the mailbox now, and
-- until when its lease holds unless renewed. Another worker skips a leased
-- mailbox; a worker that dies loses its leases when they expire.
-- fetch_runs.worker: which worker made the run, for admins.
ALTER TABLE mailboxes ADD COLUMN lease_owner text;
ALTER TABLE mailboxes ADD COLUMN lease_expires_at timestamp;
ALTER TABLE fetch_runs ADD COLUMN worker text;
