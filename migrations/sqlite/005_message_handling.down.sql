-- Drops the sanitized HTML, the size limit and the auto-reply policy.
ALTER TABLE mailboxes DROP COLUMN max_message_bytes;
ALTER TABLE mailboxes DROP COLUMN auto_reply_tickets;
DROP INDEX tickets_auto_replies_idx;
ALTER TABLE tickets DROP COLUMN kind;
ALTER TABLE ticket_messages DROP COLUMN raw_truncated;
ALTER TABLE ticket_messages DROP COLUMN body_html_safe;
