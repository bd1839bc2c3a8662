/*-------------------------------------------------------------------------
 *
 * grants.c
 *	  grant_adapter() and revoke_adapter(): access profiles for application
 *	  roles.
 *
 * This file owns the profiles of README "Security model": which privileges
 * each grant_adapter profile gives, and how revoke_adapter takes them all
 * back.  Every profile gets USAGE on schema exchange and SELECT on the ledger
 * tables and the read views, and EXECUTE on the market-data functions (they
 * read nothing those tables do not show); EXECUTE on the other API functions
 * that exist is granted per profile.
 *
 * It must never grant CREATE on the schema; INSERT, UPDATE, DELETE,
 * TRUNCATE or anything but SELECT on a table (the lifecycle could be
 * bypassed); any privilege on the internal tables (outbox, services);
 * EXECUTE on grant_adapter, revoke_adapter or a trigger function; nor
 * anything to PUBLIC.  Both functions are declared SECURITY DEFINER and
 * executable by superusers only, and check that the caller is one.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#include "exchange_adapter.h"

PG_FUNCTION_INFO_V1(exa_grant_adapter);
PG_FUNCTION_INFO_V1(exa_revoke_adapter);

/*
 * The profiles (README "Security model"), the one place that says which API
 * function a profile may execute.  A function named here gets EXECUTE in every
 * overload of that name found in schema exchange; names not (yet) installed
 * are skipped.  A new API function is added to exactly one list; "all" is the
 * union of the three, and every profile has read_functions as well.
 */
static const char *const read_functions[] = {
	"order_book_depth", "ticker", "candles",
	NULL
};

static const char *const trader_functions[] = {
	"place_order", "cancel_order", "cancel_orders",
	"place_orders", "cancel_order_ids",
	NULL
};

static const char *const engine_functions[] = {
	"apply_trade", "apply_match", "trigger_stop_orders", "expire_order",
	"expire_orders", "apply_trades", "apply_matches",
	NULL
};

static const char *const operator_functions[] = {
	"create_account", "set_account_status", "set_kyc_status",
	"create_market", "set_market_status", "set_market_matching",
	"deposit", "withdraw", "lock_balance", "unlock_balance", "capture_hold",
	"check_invariants",
	"register_service", "heartbeat_service", "deregister_service",
	"discover_services",
	"adapter_status", "flush_outbox",
	NULL
};

/* Never granted, whatever a list above says. */
static const char *const never_granted[] = {
	"grant_adapter", "revoke_adapter", NULL
};

typedef struct AdapterProfile
{
	const char *name;
	const char *const *lists[5];	/* NULL-terminated */
} AdapterProfile;

static const AdapterProfile profiles[] = {
	{"trader", {read_functions, trader_functions, NULL}},
	{"engine", {read_functions, engine_functions, NULL}},
	{"operator", {read_functions, operator_functions, NULL}},
	{"all", {read_functions, trader_functions, engine_functions,
			 operator_functions, NULL}},
};

#define PROFILE_LIST	"trader, engine, operator and all"

static bool
name_in(const char *name, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(name, *list) == 0)
			return true;
	return false;
}

/*
 * Refuse callers that are not superusers.  EXECUTE is revoked from PUBLIC
 * already; this also holds if somebody grants it wholesale (GRANT ... ON ALL
 * FUNCTIONS IN SCHEMA exchange), since both functions run as their
 * superuser definer and would hand out the whole ledger.  The outer user is
 * the caller whatever SECURITY DEFINER made current_user.
 */
static void
check_caller(const char *funcname)
{
	if (!superuser_arg(GetOuterUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function %s", funcname),
				 errdetail("Only superusers may grant or revoke exchange_adapter privileges.")));
}

/*
 * Validate the role argument and return its quoted name.  PUBLIC
 * ('-'::regrole, OID 0) and OIDs of dropped roles are refused.
 */
static char *
checked_role_name(FunctionCallInfo fcinfo, const char *funcname)
{
	Oid			roleid;
	char	   *rolename;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("parameter \"%s\" must not be null", "role"),
				 errhint("Pass the role to %s as its name, e.g. 'app'::regrole.",
						 funcname)));

	roleid = PG_GETARG_OID(0);
	if (!OidIsValid(roleid))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s cannot be applied to PUBLIC", funcname),
				 errdetail("Privileges on the ledger are given to named roles only."),
				 errhint("Create a role for the application and pass it instead.")));

	rolename = GetUserNameFromId(roleid, true);
	if (rolename == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("role with OID %u does not exist", roleid)));

	return pstrdup(quote_identifier(rolename));
}

static void
run_utility(const char *command)
{
	int			ret = SPI_execute(command, false, 0);

	if (ret != SPI_OK_UTILITY)
		elog(ERROR, "SPI_execute failed: %s: %s",
			 command, SPI_result_code_string(ret));
}

/*
 * Grant EXECUTE to rolename on every function of schema exchange named in
 * the profile's lists.  Needs an SPI connection.
 */
static void
grant_profile_functions(const AdapterProfile *profile, const char *rolename)
{
	Datum	   *names;
	int			nnames = 0;
	int			capacity = 0;
	ArrayType  *namearray;
	Oid			argtypes[2] = {OIDOID, TEXTARRAYOID};
	Datum		values[2];
	Oid		   *procs;
	uint64		nprocs;
	uint64		i;
	int			l;
	int			ret;
	StringInfoData cmd;

	for (l = 0; profile->lists[l] != NULL; l++)
	{
		const char *const *f;

		for (f = profile->lists[l]; *f != NULL; f++)
			capacity++;
	}
	names = (Datum *) palloc(sizeof(Datum) * capacity);
	for (l = 0; profile->lists[l] != NULL; l++)
	{
		const char *const *f;

		for (f = profile->lists[l]; *f != NULL; f++)
			names[nnames++] = CStringGetTextDatum(*f);
	}
	namearray = construct_array(names, nnames, TEXTOID, -1, false,
								TYPALIGN_INT);

	values[0] = ObjectIdGetDatum(exa_schema_oid(false));
	values[1] = PointerGetDatum(namearray);
	/*
	 * Only the extension's own functions: an overload that some other role
	 * created in the schema must never be granted.
	 */
	ret = SPI_execute_with_args("SELECT p.oid FROM pg_catalog.pg_proc p"
								" JOIN pg_catalog.pg_depend d"
								"   ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass"
								"  AND d.objid OPERATOR(pg_catalog.=) p.oid"
								"  AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass"
								"  AND d.deptype OPERATOR(pg_catalog.=) 'e'"
								" JOIN pg_catalog.pg_extension e"
								"   ON e.oid OPERATOR(pg_catalog.=) d.refobjid"
								"  AND e.extname OPERATOR(pg_catalog.=) 'exchange_adapter'"
								" WHERE p.pronamespace OPERATOR(pg_catalog.=) $1"
								" AND p.proname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($2)"
								" ORDER BY p.proname, p.oid",
								2, argtypes, values, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed reading pg_proc: %s",
			 SPI_result_code_string(ret));

	/* Copy the OIDs out: the GRANTs below free SPI_tuptable. */
	nprocs = SPI_processed;
	procs = (Oid *) palloc(sizeof(Oid) * (nprocs + 1));
	for (i = 0; i < nprocs; i++)
	{
		bool		isnull;

		procs[i] = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
												  SPI_tuptable->tupdesc,
												  1, &isnull));
	}

	initStringInfo(&cmd);
	for (i = 0; i < nprocs; i++)
	{
		Oid			rettype = get_func_rettype(procs[i]);
		char	   *proname = get_func_name(procs[i]);

		/* Belt and braces: the lists never name these. */
		if (rettype == TRIGGEROID || rettype == EVENT_TRIGGEROID ||
			proname == NULL || name_in(proname, never_granted))
			continue;

		resetStringInfo(&cmd);
		appendStringInfo(&cmd, "GRANT EXECUTE ON ROUTINE %s TO %s",
						 format_procedure_qualified(procs[i]), rolename);
		run_utility(cmd.data);
	}
}

/*
 * grant_adapter(role regrole, profile text DEFAULT 'all') RETURNS void
 */
Datum
exa_grant_adapter(PG_FUNCTION_ARGS)
{
	char	   *rolename;
	char	   *profile_name;
	const AdapterProfile *profile = NULL;
	StringInfoData cmd;
	int			i;

	check_caller("grant_adapter");
	rolename = checked_role_name(fcinfo, "grant_adapter");

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("parameter \"%s\" must not be null", "profile"),
				 errhint("The profiles are %s.", PROFILE_LIST)));
	profile_name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	for (i = 0; i < (int) lengthof(profiles); i++)
	{
		if (pg_strcasecmp(profile_name, profiles[i].name) == 0)
		{
			profile = &profiles[i];
			break;
		}
	}
	if (profile == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown grant_adapter profile \"%s\"", profile_name),
				 errhint("The profiles are %s.", PROFILE_LIST)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	initStringInfo(&cmd);
	appendStringInfo(&cmd, "GRANT USAGE ON SCHEMA %s TO %s",
					 quote_identifier(EXA_SCHEMA_NAME), rolename);
	run_utility(cmd.data);

	/* SELECT on the ledger tables and read views that exist. */
	for (i = 0; exa_ledger_tables[i] != NULL; i++)
	{
		if (!OidIsValid(exa_relation_oid(exa_ledger_tables[i])))
			continue;
		resetStringInfo(&cmd);
		appendStringInfo(&cmd, "GRANT SELECT ON TABLE %s.%s TO %s",
						 quote_identifier(EXA_SCHEMA_NAME),
						 quote_identifier(exa_ledger_tables[i]), rolename);
		run_utility(cmd.data);
	}
	for (i = 0; exa_read_views[i] != NULL; i++)
	{
		if (!OidIsValid(exa_relation_oid(exa_read_views[i])))
			continue;
		resetStringInfo(&cmd);
		appendStringInfo(&cmd, "GRANT SELECT ON TABLE %s.%s TO %s",
						 quote_identifier(EXA_SCHEMA_NAME),
						 quote_identifier(exa_read_views[i]), rolename);
		run_utility(cmd.data);
	}

	grant_profile_functions(profile, rolename);

	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * revoke_adapter(role regrole) RETURNS void
 *
 * Takes back everything on schema exchange and its objects, whatever
 * granted it: schema privileges, every table, view and sequence privilege
 * (column privileges go with them) and EXECUTE on every routine.  CASCADE
 * also removes what the role passed on with a grant option.  Default
 * privileges (ALTER DEFAULT PRIVILEGES) are not touched.
 */
Datum
exa_revoke_adapter(PG_FUNCTION_ARGS)
{
	char	   *rolename;
	Oid			nsp;
	HeapTuple	tuple;
	Oid			owner;
	const char *schema = quote_identifier(EXA_SCHEMA_NAME);
	StringInfoData cmd;

	check_caller("revoke_adapter");
	rolename = checked_role_name(fcinfo, "revoke_adapter");

	nsp = exa_schema_oid(false);
	tuple = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for namespace %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tuple))->nspowner;
	ReleaseSysCache(tuple);

	if (owner == PG_GETARG_OID(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot revoke exchange_adapter privileges from %s", rolename),
				 errdetail("Role %s owns schema \"%s\"; its privileges are an owner's, not a profile's.",
						   rolename, EXA_SCHEMA_NAME)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	initStringInfo(&cmd);
	appendStringInfo(&cmd, "REVOKE ALL ON SCHEMA %s FROM %s CASCADE",
					 schema, rolename);
	run_utility(cmd.data);

	resetStringInfo(&cmd);
	appendStringInfo(&cmd, "REVOKE ALL ON ALL TABLES IN SCHEMA %s FROM %s CASCADE",
					 schema, rolename);
	run_utility(cmd.data);

	resetStringInfo(&cmd);
	appendStringInfo(&cmd, "REVOKE ALL ON ALL SEQUENCES IN SCHEMA %s FROM %s CASCADE",
					 schema, rolename);
	run_utility(cmd.data);

	resetStringInfo(&cmd);
	appendStringInfo(&cmd, "REVOKE ALL ON ALL ROUTINES IN SCHEMA %s FROM %s CASCADE",
					 schema, rolename);
	run_utility(cmd.data);

	SPI_finish();
	PG_RETURN_VOID();
}
