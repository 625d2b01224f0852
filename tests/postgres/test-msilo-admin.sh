#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# msilo-admin migrate on the test database: creates, then changes nothing;
# upgrades a Kamailio table; refuses bad input. Usage: test-msilo-admin.sh MSILO_ADMIN
set -u
admin=$1
if [[ -z "${MSILO_TEST_PG_URL:-}" ]]; then
    [[ "${MSILO_REQUIRE_PG:-}" == 1 ]] && { echo "MSILO_TEST_PG_URL not set" >&2; exit 1; }
    exit 77
fi
command -v psql >/dev/null || PATH=$PATH:/usr/lib/postgresql/15/bin
fail() { echo "FAIL: $*" >&2; exit 1; }
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$MSILO_TEST_PG_URL" -c "$1"; }

t="admin_$$"
trap 'sql "DROP TABLE IF EXISTS ${t}_delivery, ${t}_device, $t, ${t}_kam_delivery, ${t}_kam_device, ${t}_kam" >/dev/null 2>&1' EXIT

out=$("$admin" migrate --db-url "$MSILO_TEST_PG_URL" --table "$t") || fail "first migrate: $out"
# the table, 4 indexes, the per-device tables and their index
[[ "$out" == "table $t: 8 changes" ]] || fail "first migrate said: $out"
out=$("$admin" migrate --db-url "$MSILO_TEST_PG_URL" --table "$t") || fail "second migrate: $out"
[[ "$out" == "table $t: 0 changes" ]] || fail "second migrate said: $out"

sql "CREATE TABLE ${t}_kam (id SERIAL PRIMARY KEY NOT NULL, src_addr VARCHAR(255) DEFAULT '' NOT NULL,
     dst_addr VARCHAR(255) DEFAULT '' NOT NULL, username VARCHAR(64) DEFAULT '' NOT NULL,
     domain VARCHAR(64) DEFAULT '' NOT NULL, inc_time INTEGER DEFAULT 0 NOT NULL,
     exp_time INTEGER DEFAULT 0 NOT NULL, snd_time INTEGER DEFAULT 0 NOT NULL,
     ctype VARCHAR(32) DEFAULT 'text/plain' NOT NULL, body BYTEA, extra_hdrs TEXT,
     callid VARCHAR(128) DEFAULT '' NOT NULL, status INTEGER DEFAULT 0 NOT NULL);
     INSERT INTO ${t}_kam (src_addr, dst_addr, username, domain, body) VALUES ('a', 'b', 'u', 'd', 'x')" ||
    fail "creating a Kamailio table"
MSILO_DB_URL=$MSILO_TEST_PG_URL "$admin" migrate --table "${t}_kam" >/dev/null || fail "kamailio migrate"
[[ $(sql "SELECT count(*) || ':' || max(lease_until) FROM ${t}_kam") == "1:0" ]] || fail "rows after migrate"
out=$("$admin" migrate --db-url "$MSILO_TEST_PG_URL" --table "${t}_kam") || fail "kamailio again"
[[ "$out" == "table ${t}_kam: 0 changes" ]] || fail "kamailio second migrate said: $out"

"$admin" migrate >/dev/null 2>&1 && fail "migrate without a URL succeeded"
"$admin" migrate --db-url "$MSILO_TEST_PG_URL" --column sc_nope=x >/dev/null 2>&1 && fail "unknown column key accepted"
"$admin" frobnicate >/dev/null 2>&1 && fail "unknown command accepted"
"$admin" --help | grep -q migrate || fail "help"
echo "ok"
