-- Drops the mailboxes and with them every token the fetcher holds.
DROP TABLE mailboxes;
