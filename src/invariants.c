/*-------------------------------------------------------------------------
 *
 * invariants.c
 *	  check_invariants(): every clause of README "Invariants", one row
 *	  per violation, named after its clause.  Empty when the ledger is sound.
 *
 * Clause names (the README lists them with their meaning):
 *	 1. locked_balance		locked_balance = live orders' locks + holds' remaining
 *		journal_balance		available and locked = sums of journal deltas
 *	 2. asset_conservation	per asset: balances + fees = deposits - withdrawals
 *							- captures + migrations + external trade flow
 *		match_netting		the trades of one apply_match net to zero per asset
 *	 3. filled_quantity		0 <= filled <= quantity, filled = sum of trades
 *		terminal_locked		terminal orders hold no lock
 *		trade_order			a trade's symbol and side are its order's
 *		closed_account		a CLOSED account holds no funds, live order or hold
 *							(README "Order lifecycle and arithmetic": an account
 *							closes only when it holds nothing)
 *		foreign_keys		every row the API writes under a foreign key it
 *							vouches for (README "Data model") references a row
 *							that exists
 *	 4. event_replay		each order's events replay along the lifecycle
 *							table to its status and filled quantity
 *	 5. book_crossed		an INTERNAL market's resting bids all lie below
 *							its resting asks (README "Matching engine")
 *		trade_seq			a market's trade_seq is the number of its
 *							executions: its trades' seq run 1..trade_seq, two
 *							trades each
 *	 (5 reads the 1.1 columns: it runs only on a 1.1 catalog.)
 *
 * It reads with the caller's snapshot and takes no lock: under READ
 * COMMITTED run it when no call is in flight, or in a REPEATABLE READ
 * transaction, to see one consistent state.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "catalog_version.h"
#include "states.h"
#include "stmt.h"

PG_FUNCTION_INFO_V1(exa_check_invariants);

/*
 * The statement, in three pieces around the two lists that come from the
 * lifecycle table (states.c): the statuses an order is created with, and
 * the legal (from_status, to_status) moves.  invariants_stmt() joins them.
 */
static const char invariants_sql_head[] =
	"WITH expected_locked AS ("
	"  SELECT account_id, asset, pg_catalog.sum(amount) AS amount FROM ("
	"    SELECT account_id, lock_asset::pg_catalog.text AS asset, locked_amount AS amount"
	"      FROM exchange.orders WHERE status IN ('PENDING', 'OPEN', 'PARTIAL')"
	"    UNION ALL"
	"    SELECT account_id, asset::pg_catalog.text, remaining"
	"      FROM exchange.holds WHERE remaining <> 0) l"
	"  GROUP BY account_id, asset),"
	" journal AS ("
	"  SELECT account_id, asset::pg_catalog.text AS asset,"
	"         pg_catalog.sum(delta_available) AS available,"
	"         pg_catalog.sum(delta_locked) AS locked"
	"    FROM exchange.balance_journal GROUP BY account_id, asset),"
	" balances AS ("
	"  SELECT account_id, symbol::pg_catalog.text AS asset, available_balance,"
	"         locked_balance, total_balance FROM exchange.balances),"
	" events AS ("
	"  SELECT e.order_id, e.seq, e.from_status::pg_catalog.text AS from_status,"
	"         e.to_status::pg_catalog.text AS to_status, e.filled_delta,"
	"         pg_catalog.lag(e.to_status::pg_catalog.text) OVER w AS prev,"
	"         pg_catalog.row_number() OVER w AS n"
	"    FROM exchange.order_events e"
	"  WINDOW w AS (PARTITION BY e.order_id ORDER BY e.seq)),"
	" replay AS ("
	"  SELECT order_id,"
	"         (pg_catalog.array_agg(to_status ORDER BY seq DESC))[1] AS last_status,"
	"         pg_catalog.sum(filled_delta) AS filled"
	"    FROM events GROUP BY order_id)"
	/* 1 */
	" SELECT 'locked_balance'::pg_catalog.text, pg_catalog.format("
	"   'account %s asset %s: locked_balance %s, but live orders and holds lock %s',"
	"   COALESCE(b.account_id, x.account_id), COALESCE(b.asset, x.asset),"
	"   COALESCE(b.locked_balance, 0), COALESCE(x.amount, 0))"
	"   FROM balances b FULL JOIN expected_locked x"
	"     ON x.account_id = b.account_id AND x.asset = b.asset"
	"  WHERE COALESCE(b.locked_balance, 0) <> COALESCE(x.amount, 0)"
	" UNION ALL"
	" SELECT 'journal_balance', pg_catalog.format("
	"   'account %s asset %s: available %s / locked %s, but the journal sums to %s / %s',"
	"   COALESCE(b.account_id, j.account_id), COALESCE(b.asset, j.asset),"
	"   COALESCE(b.available_balance, 0), COALESCE(b.locked_balance, 0),"
	"   COALESCE(j.available, 0), COALESCE(j.locked, 0))"
	"   FROM balances b FULL JOIN journal j"
	"     ON j.account_id = b.account_id AND j.asset = b.asset"
	"  WHERE COALESCE(b.available_balance, 0) <> COALESCE(j.available, 0)"
	"     OR COALESCE(b.locked_balance, 0) <> COALESCE(j.locked, 0)"
	/* 2 */
	" UNION ALL"
	" SELECT 'asset_conservation', pg_catalog.format("
	"   'asset %s: balances %s + fees %s <> deposits, withdrawals, captures, migrations and external trades %s',"
	"   asset, pg_catalog.sum(bal), pg_catalog.sum(fee), pg_catalog.sum(ext))"
	"   FROM ("
	"     SELECT asset, total_balance AS bal, 0 AS fee, 0 AS ext FROM balances"
	"     UNION ALL"
	"     SELECT asset::pg_catalog.text, 0, amount, 0 FROM exchange.fee_ledger"
	"     UNION ALL"
	"     SELECT j.asset::pg_catalog.text, 0, 0, j.delta_available + j.delta_locked"
	"       FROM exchange.balance_journal j"
	"       LEFT JOIN exchange.trades t ON t.trade_id = j.trade_id"
	"      WHERE j.kind IN ('DEPOSIT', 'WITHDRAWAL', 'CAPTURE', 'MIGRATION')"
	"         OR (j.kind = 'TRADE' AND t.match_id IS NULL)) c"
	"  GROUP BY asset"
	" HAVING pg_catalog.sum(bal) + pg_catalog.sum(fee) <> pg_catalog.sum(ext)"
	" UNION ALL"
	" SELECT 'match_netting', pg_catalog.format("
	"   'match %s asset %s: its trades net to %s', t.match_id, j.asset,"
	"   pg_catalog.sum(j.delta_available + j.delta_locked))"
	"   FROM exchange.balance_journal j"
	"   JOIN exchange.trades t ON t.trade_id = j.trade_id"
	"  WHERE t.match_id IS NOT NULL AND j.kind = 'TRADE'"
	"  GROUP BY t.match_id, j.asset"
	" HAVING pg_catalog.sum(j.delta_available + j.delta_locked) <> 0"
	" UNION ALL"
	" SELECT 'match_netting', pg_catalog.format("
	"   'match %s has %s trades; a match has one BUY and one SELL trade',"
	"   match_id, pg_catalog.count(*))"
	"   FROM exchange.trades WHERE match_id IS NOT NULL"
	"  GROUP BY match_id"
	" HAVING pg_catalog.count(*) FILTER (WHERE side = 'BUY') <> 1"
	"     OR pg_catalog.count(*) FILTER (WHERE side = 'SELL') <> 1"
	/* 3 */
	" UNION ALL"
	" SELECT 'filled_quantity', pg_catalog.format("
	"   'order %s: filled_quantity %s, quantity %s, trades sum to %s',"
	"   o.order_id, o.filled_quantity, o.quantity, COALESCE(t.quantity, 0))"
	"   FROM exchange.orders o"
	"   LEFT JOIN (SELECT order_id, pg_catalog.sum(quantity) AS quantity"
	"                FROM exchange.trades GROUP BY order_id) t ON t.order_id = o.order_id"
	"  WHERE o.filled_quantity < 0 OR o.filled_quantity > o.quantity"
	"     OR o.filled_quantity <> COALESCE(t.quantity, 0)"
	" UNION ALL"
	" SELECT 'terminal_locked', pg_catalog.format("
	"   'order %s is %s but still locks %s %s',"
	"   order_id, status, locked_amount, lock_asset)"
	"   FROM exchange.orders"
	"  WHERE status IN ('FILLED', 'CANCELLED', 'REJECTED', 'EXPIRED')"
	"    AND locked_amount <> 0"
	" UNION ALL"
	" SELECT 'trade_order', pg_catalog.format("
	"   'trade %s: %s %s, but its order %s is %s %s',"
	"   t.trade_id, t.side, t.symbol, o.order_id, o.side, o.symbol)"
	"   FROM exchange.trades t JOIN exchange.orders o ON o.order_id = t.order_id"
	"  WHERE t.symbol <> o.symbol OR t.side <> o.side OR t.account_id <> o.account_id"
	" UNION ALL"
	" SELECT 'closed_account', pg_catalog.format("
	"   'account %s is CLOSED but holds %s',"
	"   a.account_id, pg_catalog.string_agg(h.what, ', ' ORDER BY h.what))"
	"   FROM exchange.accounts a"
	"   JOIN (SELECT account_id, pg_catalog.format('%s %s', total_balance, asset) AS what"
	"           FROM balances WHERE total_balance <> 0"
	"         UNION ALL"
	"         SELECT account_id, pg_catalog.format('%s order %s', status, order_id)"
	"           FROM exchange.orders WHERE status IN ('PENDING', 'OPEN', 'PARTIAL')"
	"         UNION ALL"
	"         SELECT account_id, pg_catalog.format('hold %s', hold_id)"
	"           FROM exchange.holds WHERE remaining <> 0) h ON h.account_id = a.account_id"
	"  WHERE a.status = 'CLOSED'"
	"  GROUP BY a.account_id"
	" UNION ALL"
	" SELECT 'foreign_keys', pg_catalog.format("
	"   '%s %s references %s %s, which does not exist', k.tbl, k.id, k.ref, k.key)"
	"   FROM (SELECT 'orders' AS tbl, o.order_id::pg_catalog.text AS id,"
	"                'accounts' AS ref, o.account_id::pg_catalog.text AS key"
	"           FROM exchange.orders o WHERE NOT EXISTS"
	"                (SELECT FROM exchange.accounts a WHERE a.account_id = o.account_id)"
	"         UNION ALL"
	"         SELECT 'orders', o.order_id::pg_catalog.text, 'markets', o.symbol::pg_catalog.text"
	"           FROM exchange.orders o WHERE NOT EXISTS"
	"                (SELECT FROM exchange.markets m WHERE m.symbol = o.symbol)"
	"         UNION ALL"
	"         SELECT 'trades', t.trade_id::pg_catalog.text, 'orders', t.order_id::pg_catalog.text"
	"           FROM exchange.trades t WHERE NOT EXISTS"
	"                (SELECT FROM exchange.orders o WHERE o.order_id = t.order_id)"
	"         UNION ALL"
	"         SELECT 'trades', t.trade_id::pg_catalog.text, 'markets', t.symbol::pg_catalog.text"
	"           FROM exchange.trades t WHERE NOT EXISTS"
	"                (SELECT FROM exchange.markets m WHERE m.symbol = t.symbol)"
	"         UNION ALL"
	"         SELECT 'balance_journal', j.seq::pg_catalog.text, 'accounts',"
	"                j.account_id::pg_catalog.text"
	"           FROM exchange.balance_journal j WHERE NOT EXISTS"
	"                (SELECT FROM exchange.accounts a WHERE a.account_id = j.account_id)"
	"         UNION ALL"
	"         SELECT 'order_events', e.seq::pg_catalog.text, 'orders', e.order_id::pg_catalog.text"
	"           FROM exchange.order_events e WHERE NOT EXISTS"
	"                (SELECT FROM exchange.orders o WHERE o.order_id = e.order_id)"
	"         UNION ALL"
	"         SELECT 'fee_ledger', f.seq::pg_catalog.text, 'trades', f.trade_id::pg_catalog.text"
	"           FROM exchange.fee_ledger f WHERE NOT EXISTS"
	"                (SELECT FROM exchange.trades t WHERE t.trade_id = f.trade_id)) k"
	/* 4 */
	" UNION ALL"
	" SELECT 'event_replay', pg_catalog.format("
	"   'order %s: event %s moves %s -> %s after %s',"
	"   order_id, seq, COALESCE(from_status, 'NULL'), to_status, COALESCE(prev, 'creation'))"
	"   FROM events"
	"  WHERE (n = 1 AND (from_status IS NOT NULL"
	"                    OR to_status NOT IN (";	/* the initial statuses */
static const char invariants_sql_middle[] =
	")))"
	"     OR (n > 1 AND (from_status IS DISTINCT FROM prev"
	"                    OR (from_status, to_status) NOT IN (";	/* the moves */
static const char invariants_sql_tail[] =
	")))"
	" UNION ALL"
	" SELECT 'event_replay', pg_catalog.format("
	"   'order %s is %s with filled_quantity %s, but its events replay to %s with %s',"
	"   o.order_id, o.status, o.filled_quantity, COALESCE(r.last_status, 'no event'),"
	"   COALESCE(r.filled, 0))"
	"   FROM exchange.orders o LEFT JOIN replay r ON r.order_id = o.order_id"
	"  WHERE r.last_status IS DISTINCT FROM o.status::pg_catalog.text"
	"     OR COALESCE(r.filled, 0) <> o.filled_quantity"
	" ORDER BY 1, 2";

static ExaStmt stmt_invariants = {NULL, 0, {0}, NULL};

/* 5: the matching engine's clauses (1.1 catalog) */
static ExaStmt stmt_invariants_matching = {
	"SELECT 'book_crossed'::pg_catalog.text, pg_catalog.format("
	"   'market %s is matched internally but its best bid %s is not below its best ask %s',"
	"   m.symbol, b.bid, b.ask)"
	"   FROM exchange.markets m,"
	"        LATERAL (SELECT pg_catalog.max(o.price) FILTER (WHERE o.side = 'BUY') AS bid,"
	"                        pg_catalog.min(o.price) FILTER (WHERE o.side = 'SELL') AS ask"
	"                   FROM exchange.orders o"
	"                  WHERE o.symbol = m.symbol AND o.status IN ('OPEN', 'PARTIAL')) b"
	"  WHERE m.matching = 'INTERNAL' AND b.bid >= b.ask"
	" UNION ALL"
	" SELECT 'trade_seq', pg_catalog.format("
	"   'market %s: trade_seq %s, but its trades carry %s distinct seq up to %s in %s trades',"
	"   m.symbol, m.trade_seq, COALESCE(t.n, 0), COALESCE(t.top, 0), COALESCE(t.trades, 0))"
	"   FROM exchange.markets m"
	"   LEFT JOIN (SELECT symbol, pg_catalog.count(DISTINCT seq) AS n, pg_catalog.max(seq) AS top,"
	"                     pg_catalog.count(*) AS trades"
	"                FROM exchange.trades WHERE seq IS NOT NULL GROUP BY symbol) t"
	"     ON t.symbol = m.symbol"
	"  WHERE m.trade_seq <> COALESCE(t.top, 0) OR m.trade_seq <> COALESCE(t.n, 0)"
	"     OR 2 * m.trade_seq <> COALESCE(t.trades, 0)"
	" ORDER BY 1, 2",
	0, {0},
	NULL
};

/*
 * The statement, built once per backend from the lifecycle table so that
 * the legal moves are written in one place.
 */
static ExaStmt *
invariants_stmt(void)
{
	if (stmt_invariants.sql == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
		StringInfoData sql;
		bool		first = true;

		initStringInfo(&sql);
		appendStringInfoString(&sql, invariants_sql_head);
		for (int s = 0; s < EXA_ORDER_NSTATUS; s++)
		{
			if (!exa_order_status_initial((ExaOrderStatus) s))
				continue;
			appendStringInfo(&sql, "%s'%s'", first ? "" : ", ",
							 exa_order_status_name((ExaOrderStatus) s));
			first = false;
		}
		appendStringInfoString(&sql, invariants_sql_middle);
		for (int i = 0; i < exa_order_ntransitions; i++)
			appendStringInfo(&sql, "%s('%s', '%s')", i == 0 ? "" : ", ",
							 exa_order_status_name(exa_order_transitions[i].from),
							 exa_order_status_name(exa_order_transitions[i].to));
		appendStringInfoString(&sql, invariants_sql_tail);
		MemoryContextSwitchTo(old);
		stmt_invariants.sql = sql.data;
	}
	return &stmt_invariants;
}

/* check_invariants() -> setof (invariant text, detail text) */
Datum
exa_check_invariants(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	uint64		n;

	InitMaterializedSRF(fcinfo, 0);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	for (int pass = 0; pass < 2; pass++)
	{
		if (pass == 0)
			n = exa_exec(invariants_stmt(), NULL, NULL, 0);
		else if (exa_catalog_is_1_1())
			n = exa_exec(&stmt_invariants_matching, NULL, NULL, 0);
		else
			break;
		for (uint64 i = 0; i < n; i++)
		{
			Datum		values[2];
			bool		nulls[2] = {false, false};

			values[0] = exa_col(i, 1, &nulls[0]);
			values[1] = exa_col(i, 2, &nulls[1]);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	SPI_finish();
	return (Datum) 0;
}
