/*-------------------------------------------------------------------------
 *
 * ddl_guard.c
 *	  The DROP EXTENSION guard (an event trigger at ddl_command_start) and
 *	  the creation guard of schema exchange (one at ddl_command_end).
 *
 * This file owns the rule (README "Security model") that DROP EXTENSION
 * exchange_adapter is refused while the ledger holds rows unless
 * exchange_adapter.allow_drop is on, so that a reinstall never silently
 * destroys the ledger.  The same holds for DROP SCHEMA exchange CASCADE, which
 * would cascade into the extension, and for DROP OWNED BY the extension's
 * owner when the event trigger is also installed for the DROP OWNED tag.
 * When a drop of the extension is allowed, it also revokes every grant on
 * schema exchange held by roles other than its owner: the schema is not an
 * extension member and stays behind, and it must stay behind holding no
 * grant.
 *
 * It must return at once, without SPI or catalog access, for every DROP
 * EXTENSION or DROP SCHEMA that concerns neither the extension nor the
 * schema: the event trigger fires for all of them in the database (DROP
 * OWNED, rare, costs one catalog query).  It must not
 * change anything when it refuses, and must not touch the ledger's rows.
 *
 * The creation guard closes what the install's locks leave open (README
 * "Security model", the install race): a non-superuser's CREATE FUNCTION
 * that passed its schema privilege check before the install revoked CREATE
 * and committed, but reached pg_proc only after, would still land in schema
 * exchange.  At the end of every CREATE FUNCTION, PROCEDURE, AGGREGATE or
 * OPERATOR of a non-superuser it refuses, with PostgreSQL's own 42501, what
 * the command put in schema exchange; the command's transaction then undoes
 * it.  The extension's own scripts (creating_extension) and superusers pass.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "exchange_adapter.h"

PG_FUNCTION_INFO_V1(exa_drop_guard);
PG_FUNCTION_INFO_V1(exa_create_guard);

/* Does a DROP statement's object list name "name"? */
static bool
drop_names(DropStmt *stmt, const char *name)
{
	ListCell   *lc;

	foreach(lc, stmt->objects)
	{
		Node	   *object = (Node *) lfirst(lc);

		if (IsA(object, String) && strcmp(strVal(object), name) == 0)
			return true;
	}
	return false;
}

/*
 * Append to *nonempty, as "exchange.t, ...", every table of the list that
 * exists and holds a row.  Tables that do not exist (a half-installed or
 * half-dropped extension) are skipped.  Needs an SPI connection.
 */
static void
collect_nonempty(const char *const *tables, StringInfo nonempty)
{
	StringInfoData query;
	const char *present[32];
	int			npresent = 0;
	int			i;
	int			ret;

	initStringInfo(&query);
	appendStringInfoString(&query, "SELECT ");
	for (i = 0; tables[i] != NULL; i++)
	{
		if (!OidIsValid(exa_relation_oid(tables[i])))
			continue;
		if (npresent >= (int) lengthof(present))
			elog(ERROR, "too many ledger tables to check");
		if (npresent > 0)
			appendStringInfoString(&query, ", ");
		appendStringInfo(&query, "EXISTS (SELECT 1 FROM %s.%s)",
						 quote_identifier(EXA_SCHEMA_NAME),
						 quote_identifier(tables[i]));
		present[npresent++] = tables[i];
	}
	if (npresent == 0)
		return;

	ret = SPI_execute(query.data, true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "SPI_execute failed checking the ledger tables: %s",
			 SPI_result_code_string(ret));

	for (i = 0; i < npresent; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, i + 1, &isnull);

		if (!isnull && DatumGetBool(d))
		{
			if (nonempty->len > 0)
				appendStringInfoString(nonempty, ", ");
			appendStringInfo(nonempty, "%s.%s", EXA_SCHEMA_NAME, present[i]);
		}
	}
	pfree(query.data);
}

/*
 * Revoke every privilege on schema exchange from every grantee but its
 * owner, PUBLIC included; CASCADE also removes grants those roles passed
 * on.  Reports the roles in a NOTICE.  Needs an SPI connection.
 */
static void
revoke_schema_grants(void)
{
	StringInfoData revoked;
	StringInfoData cmd;
	int			ret;
	uint64		i;
	uint64		n;
	Oid		   *grantees;

	ret = SPI_execute("SELECT DISTINCT a.grantee"
					  " FROM pg_catalog.pg_namespace n,"
					  " LATERAL pg_catalog.aclexplode(n.nspacl) a"
					  " WHERE n.nspname OPERATOR(pg_catalog.=) '" EXA_SCHEMA_NAME "'"
					  " AND a.grantee OPERATOR(pg_catalog.<>) n.nspowner"
					  " ORDER BY 1",
					  true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed reading the grants on schema \"%s\": %s",
			 EXA_SCHEMA_NAME, SPI_result_code_string(ret));

	/* Copy the grantees out: the next SPI_execute frees SPI_tuptable. */
	n = SPI_processed;
	if (n == 0)
		return;
	grantees = (Oid *) palloc(sizeof(Oid) * n);
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		grantees[i] = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
													 SPI_tuptable->tupdesc,
													 1, &isnull));
	}

	initStringInfo(&revoked);
	initStringInfo(&cmd);
	for (i = 0; i < n; i++)
	{
		const char *grantee;

		if (grantees[i] == InvalidOid)
			grantee = "PUBLIC";
		else
		{
			char	   *name = GetUserNameFromId(grantees[i], true);

			if (name == NULL)
				continue;		/* role gone: nothing to revoke by name */
			grantee = quote_identifier(name);
		}

		resetStringInfo(&cmd);
		appendStringInfo(&cmd, "REVOKE ALL ON SCHEMA %s FROM %s CASCADE",
						 quote_identifier(EXA_SCHEMA_NAME), grantee);
		ret = SPI_execute(cmd.data, false, 0);
		if (ret != SPI_OK_UTILITY)
			elog(ERROR, "SPI_execute failed: %s: %s",
				 cmd.data, SPI_result_code_string(ret));

		if (revoked.len > 0)
			appendStringInfoString(&revoked, ", ");
		appendStringInfoString(&revoked, grantee);
	}

	if (revoked.len > 0)
		ereport(NOTICE,
				(errmsg("revoked all privileges on schema \"%s\" from %s",
						EXA_SCHEMA_NAME, revoked.data),
				 errdetail("Schema \"%s\" is not part of the extension and stays behind after DROP EXTENSION, holding no grant.",
						   EXA_SCHEMA_NAME)));
}

/*
 * Would DROP OWNED drop the extension?  It drops what the listed roles own:
 * the extension when one of them owns it (whatever the behaviour: the
 * members go with it), or, with CASCADE, schema exchange and with it the
 * extension.  Sets *drops_extension / *drops_schema.  DROP OWNED is rare, so
 * a catalog query is acceptable here.  Needs an SPI connection.
 */
static void
drop_owned_targets(DropOwnedStmt *stmt, bool *drops_extension,
				   bool *drops_schema)
{
	int			ret;
	bool		isnull;
	Oid			extowner;
	Oid			nspowner;
	ListCell   *lc;

	ret = SPI_execute("SELECT e.extowner, n.nspowner"
					  " FROM pg_catalog.pg_extension e, pg_catalog.pg_namespace n"
					  " WHERE e.extname OPERATOR(pg_catalog.=) '" EXA_EXTENSION_NAME "'"
					  " AND n.nspname OPERATOR(pg_catalog.=) '" EXA_SCHEMA_NAME "'",
					  true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed reading pg_extension: %s",
			 SPI_result_code_string(ret));
	if (SPI_processed == 0)
		return;
	extowner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1,
											  &isnull));
	nspowner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 2,
											  &isnull));

	foreach(lc, stmt->roles)
	{
		Oid			roleid = get_rolespec_oid(lfirst_node(RoleSpec, lc), true);

		if (!OidIsValid(roleid))
			continue;
		if (roleid == extowner)
			*drops_extension = true;
		else if (roleid == nspowner && stmt->behavior == DROP_CASCADE)
			*drops_schema = true;
	}
}

/*
 * exa_drop_guard() RETURNS event_trigger
 *
 * ON ddl_command_start WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA'), and
 * 'DROP OWNED' when the install script lists it (DROP OWNED BY the
 * extension's owner drops the extension too).
 */
Datum
exa_drop_guard(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	bool		drops_extension = false;
	bool		drops_schema = false;
	StringInfoData nonempty;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("exa_drop_guard: not fired by event trigger manager")));

	trigdata = (EventTriggerData *) fcinfo->context;
	if (strcmp(trigdata->event, "ddl_command_start") != 0 ||
		trigdata->parsetree == NULL)
		PG_RETURN_VOID();

	if (IsA(trigdata->parsetree, DropStmt))
	{
		DropStmt   *stmt = (DropStmt *) trigdata->parsetree;

		if (stmt->removeType == OBJECT_EXTENSION)
			drops_extension = drop_names(stmt, EXA_EXTENSION_NAME);
		else if (stmt->removeType == OBJECT_SCHEMA)
		{
			/* Without CASCADE it fails on the extension's objects anyway. */
			drops_schema = stmt->behavior == DROP_CASCADE &&
				drop_names(stmt, EXA_SCHEMA_NAME);
		}
		if (!drops_extension && !drops_schema)
			PG_RETURN_VOID();

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
	}
	else if (IsA(trigdata->parsetree, DropOwnedStmt))
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		drop_owned_targets((DropOwnedStmt *) trigdata->parsetree,
						   &drops_extension, &drops_schema);
		if (!drops_extension && !drops_schema)
		{
			SPI_finish();
			PG_RETURN_VOID();
		}
	}
	else
		PG_RETURN_VOID();

	initStringInfo(&nonempty);
	collect_nonempty(exa_ledger_tables, &nonempty);
	collect_nonempty(exa_internal_tables, &nonempty);

	if (nonempty.len > 0 && !exa_allow_drop)
	{
		SPI_finish();
		if (drops_extension)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot drop extension \"%s\" while the ledger holds rows",
							EXA_EXTENSION_NAME),
					 errdetail("These tables hold rows: %s.", nonempty.data),
					 errhint("Dump the ledger first, then SET exchange_adapter.allow_drop = on to drop it.")));
		else
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot drop schema \"%s\" while the ledger holds rows",
							EXA_SCHEMA_NAME),
					 errdetail("Dropping the schema with CASCADE drops extension \"%s\". These tables hold rows: %s.",
							   EXA_EXTENSION_NAME, nonempty.data),
					 errhint("Dump the ledger first, then SET exchange_adapter.allow_drop = on to drop it.")));
	}

	/* The schema outlives the extension: leave it without grants. */
	if (drops_extension)
		revoke_schema_grants();

	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * exa_create_guard() RETURNS event_trigger
 *
 * ON ddl_command_end WHEN TAG IN ('CREATE FUNCTION', 'CREATE PROCEDURE',
 * 'CREATE AGGREGATE', 'CREATE OPERATOR').
 */
Datum
exa_create_guard(PG_FUNCTION_ARGS)
{
	char	   *created = NULL;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("exa_create_guard: not fired by event trigger manager")));
	if (creating_extension || superuser())
		PG_RETURN_VOID();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT pg_catalog.string_agg(object_identity, ', ')"
					"  FROM pg_catalog.pg_event_trigger_ddl_commands()"
					" WHERE schema_name OPERATOR(pg_catalog.=) '" EXA_SCHEMA_NAME "'",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed");
	if (SPI_processed == 1)
		created = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (created != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for schema %s", EXA_SCHEMA_NAME),
				 errdetail("Only superusers create objects in schema %s, the ledger of extension %s; refused: %s.",
						   EXA_SCHEMA_NAME, EXA_EXTENSION_NAME, created)));
	SPI_finish();
	PG_RETURN_VOID();
}
