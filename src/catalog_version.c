/*-------------------------------------------------------------------------
 *
 * catalog_version.c
 *	  The extension's installed SQL version, read again only after a change.
 *
 * This file owns the answer to "which catalog am I running on": it reads
 * pg_extension.extversion of exchange_adapter at the first question and
 * keeps the answer for the rest of the transaction (one API call never
 * sees it change), and for the transactions after it until a change of
 * pg_proc reaches this backend: then the next transaction's first question
 * reads it again.  Every way the answer can change does change pg_proc:
 * CREATE EXTENSION and DROP EXTENSION create and drop the API's functions,
 * and the one update there is, 1.0 to 1.1, creates functions.  (It used to
 * be read at the first question of every transaction: one catalog scan per
 * API call.)  It reads the catalog directly (no SPI), so it can be asked
 * from anywhere, and it must never write.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "catalog_version.h"
#include "exchange_adapter.h"

/*
 * extversion, read in transaction exa_version_lxid; still current unless
 * exa_version_stale (a pg_proc change arrived since)
 */
static char exa_version[NAMEDATALEN];
static bool exa_version_known = false;
static bool exa_version_missing = false;
static bool exa_version_stale = false;
static LocalTransactionId exa_version_lxid = InvalidLocalTransactionId;
static bool exa_version_callback = false;

/* Any change of pg_proc: read the version again in the next transaction. */
static void
exa_version_proc_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	exa_version_stale = true;
}

const char *
exa_catalog_version(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	if (exa_version_known &&
		(!exa_version_stale || MyProc->lxid == exa_version_lxid))
		return exa_version_missing ? NULL : exa_version;
	if (!exa_version_callback)
	{
		CacheRegisterSyscacheCallback(PROCOID, exa_version_proc_changed, (Datum) 0);
		exa_version_callback = true;
	}

	/* a change arriving while the table is opened: read again next time */
	exa_version_stale = false;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum(EXA_EXTENSION_NAME));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	exa_version_missing = !HeapTupleIsValid(tup);
	if (!exa_version_missing)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (isnull)
			exa_version_missing = true;
		else
			text_to_cstring_buffer(DatumGetTextPP(d), exa_version,
								   sizeof(exa_version));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	exa_version_known = true;
	exa_version_lxid = MyProc->lxid;
	return exa_version_missing ? NULL : exa_version;
}

bool
exa_catalog_is_1_1(void)
{
	const char *v = exa_catalog_version();

	return v != NULL && strcmp(v, "1.0") != 0;
}

void
exa_require_catalog(const char *feature)
{
	if (!exa_catalog_is_1_1())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s needs version 1.1 of extension exchange_adapter", feature),
				 errdetail("The installed version is %s.",
						   exa_catalog_version() ? exa_catalog_version() : "none"),
				 errhint("Run ALTER EXTENSION exchange_adapter UPDATE.")));
}
