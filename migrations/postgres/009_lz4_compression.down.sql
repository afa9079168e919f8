DO $$
BEGIN
    IF current_setting('server_version_num')::int < 140000 THEN
        RETURN;
    END IF;
    EXECUTE 'ALTER TABLE ticket_messages
        ALTER COLUMN raw SET COMPRESSION default,
        ALTER COLUMN body_text SET COMPRESSION default,
        ALTER COLUMN body_html SET COMPRESSION default,
        ALTER COLUMN body_html_safe SET COMPRESSION default';
    EXECUTE 'ALTER TABLE ticket_attachments ALTER COLUMN data SET COMPRESSION default';
END
$$;
