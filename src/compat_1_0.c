/*-------------------------------------------------------------------------
 *
 * compat_1_0.c
 *	  The unprefixed C entry points that the 1.0 catalog binds.
 *
 * Every SQL-callable C function of the library has an exa_-prefixed symbol,
 * so that it cannot clash with another library loaded in the same backend,
 * and sql/exchange_adapter--1.1.sql binds those names.  The 1.0 catalog
 * (sql/exchange_adapter--1.0.sql, released, never edited) binds the old,
 * unprefixed names.  Between installing this library and running ALTER
 * EXTENSION exchange_adapter UPDATE, this library serves a 1.0 catalog
 * (README "Upgrading"), so those names must still resolve: each one below
 * is a thin wrapper that hands its call, fcinfo untouched, to the exa_
 * function.  The update rebinds every C function of the catalog to its exa_
 * symbol (the "exa_ symbols" block at the end of
 * sql/exchange_adapter--1.0--1.1.sql), after which nothing reaches these
 * wrappers any more.
 *
 * They are reached only by a 1.0 catalog before ALTER EXTENSION ... UPDATE;
 * the library itself never calls them.  Drop this file when 1.0 catalogs
 * are no longer supported.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

/*
 * EXA_COMPAT_1_0(name) defines the V1 function `name` that returns
 * exa_name(fcinfo).  fcinfo (arguments, flinfo, fn_extra, the trigger or
 * set-returning context) is passed on as it is, so the wrapper behaves
 * exactly like the function it forwards to.
 */
#define EXA_COMPAT_1_0(name) \
	extern PGDLLEXPORT Datum exa_##name(PG_FUNCTION_ARGS); \
	extern PGDLLEXPORT Datum name(PG_FUNCTION_ARGS); \
	Datum \
	name(PG_FUNCTION_ARGS) \
	{ \
		return exa_##name(fcinfo); \
	} \
	PG_FUNCTION_INFO_V1(name)	/* last: it swallows the semicolon */

/* src/lifecycle.c, src/grants.c */
EXA_COMPAT_1_0(orders_lifecycle_guard);
EXA_COMPAT_1_0(grant_adapter);
EXA_COMPAT_1_0(revoke_adapter);

/* src/accounts.c */
EXA_COMPAT_1_0(create_account);
EXA_COMPAT_1_0(set_account_status);
EXA_COMPAT_1_0(set_kyc_status);
EXA_COMPAT_1_0(create_market);
EXA_COMPAT_1_0(set_market_status);

/* src/funds.c */
EXA_COMPAT_1_0(deposit);
EXA_COMPAT_1_0(withdraw);
EXA_COMPAT_1_0(lock_balance);
EXA_COMPAT_1_0(unlock_balance);
EXA_COMPAT_1_0(capture_hold);

/* src/orders.c */
EXA_COMPAT_1_0(place_order);
EXA_COMPAT_1_0(cancel_order);
EXA_COMPAT_1_0(cancel_orders);
EXA_COMPAT_1_0(expire_order);
EXA_COMPAT_1_0(expire_orders);
EXA_COMPAT_1_0(trigger_stop_orders);

/* src/trades.c, src/invariants.c */
EXA_COMPAT_1_0(apply_trade);
EXA_COMPAT_1_0(apply_match);
EXA_COMPAT_1_0(check_invariants);

/* src/registry.c */
EXA_COMPAT_1_0(register_service);
EXA_COMPAT_1_0(heartbeat_service);
EXA_COMPAT_1_0(deregister_service);
EXA_COMPAT_1_0(discover_services);
EXA_COMPAT_1_0(adapter_status);
EXA_COMPAT_1_0(flush_outbox);
