DO $$
BEGIN
    ALTER TABLE ticket_messages
        ALTER COLUMN raw SET COMPRESSION default,
        ALTER COLUMN body_text SET COMPRESSION default,
        ALTER COLUMN body_html SET COMPRESSION default,
        ALTER COLUMN body_html_safe SET COMPRESSION default;
    ALTER TABLE ticket_attachments ALTER COLUMN data SET COMPRESSION default;
EXCEPTION
    WHEN feature_not_supported OR syntax_error OR invalid_parameter_value OR undefined_object THEN
        NULL;
END
$$;
