-- Drops the leases: workers no longer coordinate.
ALTER TABLE fetch_runs DROP COLUMN worker;
ALTER TABLE mailboxes DROP COLUMN lease_expires_at;
ALTER TABLE mailboxes DROP COLUMN lease_owner;
