/*-------------------------------------------------------------------------
 *
 * args.h
 *	  Argument checking for the SQL API (README "Order lifecycle and
 *	  arithmetic", inputs; README "Errors").
 *
 * Every API function checks all of its arguments before it locks or writes
 * anything, so a malformed call raises and changes nothing.  SQLSTATEs:
 * 22004 for a NULL where a value is needed, 22003 for a value beyond
 * numeric(24,8), 22023 for everything else that is malformed.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXA_ARGS_H
#define EXA_ARGS_H

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/numeric.h"
#include "utils/uuid.h"

/* What an amount argument may be. */
#define EXA_AMOUNT_POSITIVE		0x01	/* > 0 (else >= 0) */
#define EXA_AMOUNT_NULL_OK		0x02	/* NULL allowed: returns NULL */

extern Numeric exa_arg_amount(FunctionCallInfo fcinfo, int argno,
							  const char *name, int flags);
extern Numeric exa_check_amount(Numeric value, const char *name, int flags);

/* 1e16: the first value numeric(24,8) cannot hold. */
extern Numeric exa_amount_limit(void);

extern pg_uuid_t *exa_new_uuid(void);
extern pg_uuid_t *exa_arg_uuid(FunctionCallInfo fcinfo, int argno,
							   const char *name);

/* A required or optional text argument, as a C string (NULL when NULL). */
extern char *exa_arg_text(FunctionCallInfo fcinfo, int argno,
						  const char *name, bool null_ok, int maxlen);

/* Asset code: ^[A-Z0-9]{1,10}$. */
extern char *exa_arg_asset(FunctionCallInfo fcinfo, int argno,
						   const char *name);
extern bool exa_valid_asset(const char *code);

/*
 * An enumerated text argument: one of the NULL-terminated "allowed" values,
 * exact upper case.  With null_ok a NULL returns NULL.
 */
extern const char *exa_arg_enum(FunctionCallInfo fcinfo, int argno,
								const char *name, const char *const *allowed,
								bool null_ok);

/* jsonb metadata: an object (NULL becomes '{}'). */
extern Datum exa_arg_metadata(FunctionCallInfo fcinfo, int argno);

/* Numeric helpers on numeric(24,8) values. */
extern int	exa_cmp(Numeric a, Numeric b);
extern Numeric exa_add(Numeric a, Numeric b);
extern Numeric exa_sub(Numeric a, Numeric b);
extern Numeric exa_mul(Numeric a, Numeric b);
extern Numeric exa_neg(Numeric a);
extern Numeric exa_zero(void);
extern bool exa_is_zero(Numeric a);
extern char *exa_num_str(Numeric a);
extern Numeric exa_num(const char *s);

/*
 * The arithmetic of README "Order lifecycle and arithmetic", on non-negative
 * values, at 8 decimals.
 */
extern Numeric exa_trunc8(Numeric a);
extern Numeric exa_ceil8(Numeric a);
extern Numeric exa_div_half_even8(Numeric num, Numeric den);
extern bool exa_is_multiple(Numeric a, Numeric step);

/*
 * An idempotent retry that differs from the stored row: its errdetail lists
 * "column stored -> given" per differing column, joined by "; ".  Each
 * appends only when the two values differ (NULL equals NULL).
 */
extern void exa_diff_text(StringInfo diff, const char *column,
						  const char *stored, const char *given);
extern void exa_diff_num(StringInfo diff, const char *column,
						 Numeric stored, Numeric given);

#endif							/* EXA_ARGS_H */
