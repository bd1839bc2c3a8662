/*-------------------------------------------------------------------------
 *
 * catalog_version.h
 *	  Which SQL version of the extension the current database runs.
 *
 * One library serves both the 1.0 and the 1.1 catalog (README "Upgrading"):
 * between a package upgrade and ALTER EXTENSION exchange_adapter UPDATE the
 * 1.1 library runs on the 1.0 catalog.  Code that reads or writes anything
 * 1.1 added asks here first; a 1.0 entry point then behaves exactly as in
 * 1.0 and a 1.1-only entry point raises 55000.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXA_CATALOG_VERSION_H
#define EXA_CATALOG_VERSION_H

/*
 * The installed version (pg_extension.extversion), read once per
 * transaction; NULL when the extension is not installed.
 */
extern const char *exa_catalog_version(void);

/*
 * The catalog is 1.1 or later: it has the matching engine's columns and
 * functions, the trade feed's outbox.trade_ids and trades.seq.
 */
extern bool exa_catalog_is_1_1(void);

/*
 * Raise 55000 unless the catalog has the matching engine; feature names
 * what needs it ("set_market_matching").
 */
extern void exa_require_catalog(const char *feature);

#endif							/* EXA_CATALOG_VERSION_H */
