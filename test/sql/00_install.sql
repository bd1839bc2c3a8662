-- The harness installed the extension (pg_regress --load-extension) into the test database.
SELECT extname, extversion FROM pg_extension WHERE extname = 'exchange_adapter';
