/*-------------------------------------------------------------------------
 *
 * args.c
 *	  Argument checking for the SQL API, and numeric helpers.
 *
 * Owns the input rules of README "Order lifecycle and arithmetic": an amount is an exact multiple of
 * 1e-8 (round(x, 8) = x by value; trailing zeros are fine), finite, within
 * numeric(24,8), and positive where a positive amount is needed.  Functions
 * here only raise; they never touch the database.  Also the ids the API
 * makes (exa_new_uuid).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "args.h"

static void
exa_null_arg(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
			 errmsg("parameter \"%s\" must not be null", name)));
}

/*
 * A numeric constant parsed once per backend and kept in TopMemoryContext:
 * the arithmetic helpers below run on every fill and placement.
 */
static Numeric
exa_const(Numeric *slot, const char *text)
{
	if (*slot == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		*slot = exa_num(text);
		MemoryContextSwitchTo(old);
	}
	return *slot;
}

/* 1e16: the first value numeric(24,8) cannot hold. */
Numeric
exa_amount_limit(void)
{
	static Numeric limit = NULL;

	return exa_const(&limit, "10000000000000000");
}

Numeric
exa_check_amount(Numeric value, const char *name, int flags)
{
	Numeric		rounded;
	Numeric		absval;

	if (numeric_is_nan(value) || numeric_is_inf(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parameter \"%s\" must be a finite number", name),
				 errdetail("The value given was %s.", exa_num_str(value))));

	absval = DatumGetNumeric(DirectFunctionCall1(numeric_abs,
												 NumericGetDatum(value)));
	if (exa_cmp(absval, exa_amount_limit()) >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("parameter \"%s\" is out of range", name),
				 errdetail("The value given was %s; amounts are numeric(24,8), below 1e16.",
						   exa_num_str(value))));

	rounded = DatumGetNumeric(DirectFunctionCall2(numeric_round,
												  NumericGetDatum(value),
												  Int32GetDatum(8)));
	if (exa_cmp(rounded, value) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parameter \"%s\" has more than 8 decimal places", name),
				 errdetail("The value given was %s.", exa_num_str(value)),
				 errhint("Amounts are exact multiples of 0.00000001.")));

	if (flags & EXA_AMOUNT_POSITIVE)
	{
		if (exa_cmp(value, exa_zero()) <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("parameter \"%s\" must be positive", name),
					 errdetail("The value given was %s.", exa_num_str(value))));
	}
	else if (exa_cmp(value, exa_zero()) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parameter \"%s\" must not be negative", name),
				 errdetail("The value given was %s.", exa_num_str(value))));

	/* Store with scale 8 like the columns do. */
	return DatumGetNumeric(DirectFunctionCall2(numeric,
											   NumericGetDatum(rounded),
											   Int32GetDatum(((24 << 16) | 8) + VARHDRSZ)));
}

Numeric
exa_arg_amount(FunctionCallInfo fcinfo, int argno, const char *name, int flags)
{
	if (PG_ARGISNULL(argno))
	{
		if (flags & EXA_AMOUNT_NULL_OK)
			return NULL;
		exa_null_arg(name);
	}
	return exa_check_amount(PG_GETARG_NUMERIC(argno), name, flags);
}

pg_uuid_t *
exa_arg_uuid(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		exa_null_arg(name);
	return PG_GETARG_UUID_P(argno);
}

char *
exa_arg_text(FunctionCallInfo fcinfo, int argno, const char *name,
			 bool null_ok, int maxlen)
{
	char	   *s;

	if (PG_ARGISNULL(argno))
	{
		if (null_ok)
			return NULL;
		exa_null_arg(name);
	}
	s = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (s[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parameter \"%s\" must not be empty", name),
				 null_ok ? errhint("Pass NULL instead of an empty string.") : 0));
	if (maxlen > 0 && pg_mbstrlen(s) > maxlen)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parameter \"%s\" is too long", name),
				 errdetail("It has %d characters; at most %d are allowed.",
						   pg_mbstrlen(s), maxlen)));
	return s;
}

bool
exa_valid_asset(const char *code)
{
	int			n = 0;

	for (; code[n] != '\0'; n++)
	{
		char		c = code[n];

		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) || n >= 10)
			return false;
	}
	return n >= 1;
}

char *
exa_arg_asset(FunctionCallInfo fcinfo, int argno, const char *name)
{
	char	   *s;

	if (PG_ARGISNULL(argno))
		exa_null_arg(name);
	s = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (!exa_valid_asset(s))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for parameter \"%s\": \"%s\"", name, s),
				 errhint("Asset codes are 1 to 10 upper-case letters or digits, like BTC or USDT.")));
	return s;
}

const char *
exa_arg_enum(FunctionCallInfo fcinfo, int argno, const char *name,
			 const char *const *allowed, bool null_ok)
{
	char	   *s;
	StringInfoData list;

	if (PG_ARGISNULL(argno))
	{
		if (null_ok)
			return NULL;
		exa_null_arg(name);
	}
	s = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	for (const char *const *a = allowed; *a != NULL; a++)
		if (strcmp(s, *a) == 0)
			return *a;

	initStringInfo(&list);
	for (const char *const *a = allowed; *a != NULL; a++)
		appendStringInfo(&list, "%s%s", a == allowed ? "" : ", ", *a);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for parameter \"%s\": \"%s\"", name, s),
			 errhint("Valid values are %s (exact upper case).", list.data)));
	return NULL;				/* keep compiler quiet */
}

Datum
exa_arg_metadata(FunctionCallInfo fcinfo, int argno)
{
	Jsonb	   *j;

	if (PG_ARGISNULL(argno))
		return DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
	j = PG_GETARG_JSONB_P(argno);
	if (!JB_ROOT_IS_OBJECT(j) || JB_ROOT_IS_SCALAR(j))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parameter \"%s\" must be a JSON object", "metadata")));
	return JsonbPGetDatum(j);
}

int
exa_cmp(Numeric a, Numeric b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp,
											 NumericGetDatum(a),
											 NumericGetDatum(b)));
}

Numeric
exa_add(Numeric a, Numeric b)
{
	return DatumGetNumeric(DirectFunctionCall2(numeric_add,
											   NumericGetDatum(a),
											   NumericGetDatum(b)));
}

Numeric
exa_sub(Numeric a, Numeric b)
{
	return DatumGetNumeric(DirectFunctionCall2(numeric_sub,
											   NumericGetDatum(a),
											   NumericGetDatum(b)));
}

Numeric
exa_mul(Numeric a, Numeric b)
{
	return DatumGetNumeric(DirectFunctionCall2(numeric_mul,
											   NumericGetDatum(a),
											   NumericGetDatum(b)));
}

Numeric
exa_neg(Numeric a)
{
	return DatumGetNumeric(DirectFunctionCall1(numeric_uminus,
											   NumericGetDatum(a)));
}

Numeric
exa_zero(void)
{
	static Numeric zero = NULL;

	return exa_const(&zero, "0");
}

bool
exa_is_zero(Numeric a)
{
	return exa_cmp(a, exa_zero()) == 0;
}

char *
exa_num_str(Numeric a)
{
	return DatumGetCString(DirectFunctionCall1(numeric_out,
											   NumericGetDatum(a)));
}

Numeric
exa_num(const char *s)
{
	return DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(s),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
}

Numeric
exa_trunc8(Numeric a)
{
	return DatumGetNumeric(DirectFunctionCall2(numeric_trunc,
											   NumericGetDatum(a),
											   Int32GetDatum(8)));
}

/* ceil8(x) for x >= 0: the smallest multiple of 1e-8 not below x. */
Numeric
exa_ceil8(Numeric a)
{
	static Numeric unit = NULL;
	Numeric		t = exa_trunc8(a);

	if (exa_cmp(t, a) < 0)
		t = exa_add(t, exa_const(&unit, "0.00000001"));
	return t;
}

/*
 * round_half_even8(num / den) for num >= 0, den > 0, computed exactly:
 * q = floor(num * 1e8 / den) and the remainder decide the rounding, and the
 * result is q x 1e-8, a product, which keeps every digit.  (numeric
 * division would not do for that last step: it keeps about 16 significant
 * digits, so from 1e12 up it rounds q / 1e8 to 4 decimals, half away from
 * zero.)
 */
Numeric
exa_div_half_even8(Numeric num, Numeric den)
{
	static Numeric e8 = NULL;
	static Numeric e_8 = NULL;
	static Numeric one = NULL;
	static Numeric two = NULL;
	Numeric		scale = exa_const(&e8, "100000000");
	Numeric		scaled = exa_mul(num, scale);
	Numeric		q = DatumGetNumeric(DirectFunctionCall2(numeric_div_trunc,
														NumericGetDatum(scaled),
														NumericGetDatum(den)));
	Numeric		rem2 = exa_mul(exa_sub(scaled, exa_mul(q, den)), exa_const(&two, "2"));
	int			c = exa_cmp(rem2, den);

	if (c > 0 ||
		(c == 0 && !exa_is_zero(DatumGetNumeric(DirectFunctionCall2(numeric_mod,
																	 NumericGetDatum(q),
																	 NumericGetDatum(exa_const(&two, "2")))))))
		q = exa_add(q, exa_const(&one, "1"));
	return exa_mul(q, exa_const(&e_8, "0.00000001"));
}

bool
exa_is_multiple(Numeric a, Numeric step)
{
	return exa_is_zero(DatumGetNumeric(DirectFunctionCall2(numeric_mod,
														   NumericGetDatum(a),
														   NumericGetDatum(step))));
}

static void
exa_diff_append(StringInfo diff, const char *column, const char *stored,
				const char *given)
{
	appendStringInfo(diff, "%s%s %s -> %s", diff->len > 0 ? "; " : "",
					 column, stored ? stored : "NULL", given ? given : "NULL");
}

void
exa_diff_text(StringInfo diff, const char *column, const char *stored,
			  const char *given)
{
	if (stored == NULL || given == NULL ? stored != given : strcmp(stored, given) != 0)
		exa_diff_append(diff, column, stored, given);
}

void
exa_diff_num(StringInfo diff, const char *column, Numeric stored, Numeric given)
{
	if (stored == NULL || given == NULL ? stored != given : exa_cmp(stored, given) != 0)
		exa_diff_append(diff, column, stored ? exa_num_str(stored) : NULL,
						given ? exa_num_str(given) : NULL);
}

/*
 * A new order, trade or match id: a random (version 4) uuid, as
 * gen_random_uuid() makes it, from strong random bytes drawn
 * EXA_UUID_POOL ids at a time (one pg_strong_random() call for 64 ids
 * rather than one per id: a batch makes thousands).  Bytes handed out are
 * wiped from the pool.  The pool is per backend; the postmaster never
 * fills it, so no forked process shares one.
 */
#define EXA_UUID_POOL 64

pg_uuid_t *
exa_new_uuid(void)
{
	static uint8 pool[EXA_UUID_POOL * UUID_LEN];
	static int	next = EXA_UUID_POOL;
	pg_uuid_t  *uuid = palloc(sizeof(pg_uuid_t));

	if (next == EXA_UUID_POOL)
	{
		if (!pg_strong_random(pool, sizeof(pool)))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate random values")));
		next = 0;
	}
	memcpy(uuid->data, pool + next * UUID_LEN, UUID_LEN);
	explicit_bzero(pool + next * UUID_LEN, UUID_LEN);
	next++;
	uuid->data[6] = (uuid->data[6] & 0x0f) | 0x40;	/* version 4 */
	uuid->data[8] = (uuid->data[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	return uuid;
}
