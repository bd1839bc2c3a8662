-- pgTAP smoke test: the harness runs pgTAP files and the extension installs.
-- Each pgTAP file sets itself up inside one transaction and rolls it back, so files never see
-- each other's objects (scripts/test.sh runs them one after another in database `pgtap`).
BEGIN;
CREATE EXTENSION exchange_adapter;

SELECT plan(1);
SELECT has_extension('exchange_adapter'::name, 'CREATE EXTENSION exchange_adapter works'::text);
SELECT * FROM finish();

ROLLBACK;
