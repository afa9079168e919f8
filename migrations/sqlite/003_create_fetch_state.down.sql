-- Forgets what was fetched: the next run fetches every message again, and
-- only the unique source keys in ticket_messages keep it from doubling rows.
DROP TABLE fetched_messages;
DROP TABLE mailbox_cursors;
DROP TABLE fetch_runs;
