-- scripts/demo.sql — what scripts/demo.sh shows, in database `demo` (psql echoes each line).
-- The servers are throwaway: PostgreSQL 15 with exchange_adapter preloaded, its worker serving
-- this database, and a redis-server on loopback that the worker pushes to after each commit.

-- The extension and everything it installed:
\dx+ exchange_adapter

-- The ledger's tables:
\dt+ exchange.*
