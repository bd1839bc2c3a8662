# exchange_adapter — PGXS build.
#
# The version lives in one place: default_version in exchange_adapter.control.
# CI adds PG_CFLAGS='-Wall -Wextra -Werror -Wno-unused-parameter'; user builds
# do not force -Werror.

EXTENSION   = exchange_adapter
EXTVERSION  = $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" $(EXTENSION).control)

MODULE_big  = exchange_adapter
OBJS = \
	src/exchange_adapter.o \
	src/accounts.o \
	src/catalog_version.o \
	src/matching.o \
	src/args.o \
	src/ddl_guard.o \
	src/install_guard.o \
	src/funds.o \
	src/grants.o \
	src/lifecycle.o \
	src/states.o \
	src/invariants.o \
	src/launcher.o \
	src/ledger.o \
	src/orders.o \
	src/batch.o \
	src/outbox.o \
	src/stmt.o \
	src/trades.o \
	src/redis_client.o \
	src/delivery.o \
	src/worker.o \
	src/worker_status.o \
	src/registry.o \
	src/compat_1_0.o \
	src/row_checks.o \
	src/check_cache.o

# Every install and upgrade script: the released 1.0 script (never edited), the 1.0 -> 1.1
# upgrade, and the full 1.1 script that fresh installs use (both paths give one catalog:
# test/t/060_upgrade.pl).
DATA        = $(sort $(wildcard sql/$(EXTENSION)--*.sql))
PGFILEDESC  = "exchange_adapter - exchange ledger with post-commit Redis delivery"

# hiredis through pkg-config; sources include it as <hiredis/hiredis.h>, so the
# -I/usr/include/hiredis that pkg-config adds is dropped (its sds.h/read.h must
# not shadow anything).
HIREDIS_CFLAGS := $(filter-out -I%,$(shell pkg-config --cflags hiredis 2>/dev/null))
HIREDIS_LIBS   := $(or $(shell pkg-config --libs hiredis 2>/dev/null),-lhiredis)
PG_CPPFLAGS    += -I$(srcdir)/src $(HIREDIS_CFLAGS)
SHLIB_LINK     += $(HIREDIS_LIBS)

# pg_regress and isolation read test/sql, test/specs and write golden output
# to the top-level expected/ (see test/README.md "Golden files": <outputdir>/expected wins).
REGRESS      = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test --outputdir=. --load-extension=$(EXTENSION)
ISOLATION      = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --outputdir=. --load-extension=$(EXTENSION)

EXTRA_CLEAN = results output_iso tmp_check* log regression.diffs regression.out

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Regress and isolation share expected/: their names must differ.
ifneq ($(filter $(REGRESS),$(ISOLATION)),)
$(error test names used by both pg_regress and isolation: $(filter $(REGRESS),$(ISOLATION)))
endif

.PHONY: pgtap prove bench bench-redis bench-profile bench-expire bench-market-data bench-matching bench-batch test
# pgTAP against the server named by PGHOST/PGPORT (pgtap extension must be available).
pgtap:
	pg_prove --ext .sql -r test/pgtap

# Perl TAP tests with PostgreSQL::Test::Cluster; they start their own clusters.
prove:
	PG_REGRESS="$${PG_REGRESS:-$(dir $(PGXS))../../src/test/regress/pg_regress}" \
	PERL5LIB="$(dir $(PGXS))../../src/test/perl:$(CURDIR)/test/perl$${PERL5LIB:+:$$PERL5LIB}" \
	prove --timer -v test/t/

# Every suite, with servers started and stopped: see scripts/test.sh.
test:
	bash scripts/test.sh

# Benchmarks (installed extension; they start and stop their own servers, print figures and
# ratios against peers measured in the same run, and assert nothing).
bench:
	bash bench/run.sh
bench-redis:
	bash bench/redis_bench.sh
bench-profile:
	bash bench/profile.sh
bench-expire:
	bash bench/expire_bench.sh
bench-market-data:
	bash bench/market_data_bench.sh

bench-matching:
	bash bench/matching_bench.sh

bench-batch:
	bash bench/batch_bench.sh
