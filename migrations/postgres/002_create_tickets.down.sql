-- Drops every ticket row the fetcher wrote.
DROP TABLE ticket_attachments;
DROP TABLE ticket_messages;
DROP TABLE tickets;
DROP TABLE ticket_types;
