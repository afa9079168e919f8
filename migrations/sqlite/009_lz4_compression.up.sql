-- Postgres only (column compression); kept so both dialects share their
-- version numbers.
SELECT 1;
