#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every msilo-admin command on a real store: rows are written with SQL (psql,
# or python3's sqlite3 module), then each command's output and exit status
# is checked, --json output with python3 -m json.tool.
#   test-msilo-admin.sh MSILO_ADMIN postgres   (needs MSILO_TEST_PG_URL, else skips)
#   test-msilo-admin.sh MSILO_ADMIN sqlite     (a temporary file)
set -u
admin=$1
backend=$2
fail() { echo "FAIL: $*" >&2; exit 1; }

tmp=$(mktemp -d)
t="admin_cmd_$$"
case $backend in
postgres)
    if [[ -z "${MSILO_TEST_PG_URL:-}" ]]; then
        [[ "${MSILO_REQUIRE_PG:-}" == 1 ]] && { echo "MSILO_TEST_PG_URL not set" >&2; exit 1; }
        exit 77
    fi
    command -v psql >/dev/null || PATH=$PATH:/usr/lib/postgresql/15/bin
    url=$MSILO_TEST_PG_URL
    sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$url" -c "$1"; }
    bin="decode('0001ff1b5b324a','hex')"
    series="generate_series(1, 600) AS g(n)"
    with=""
    trap 'sql "DROP TABLE IF EXISTS ${t}_delivery, ${t}_device, $t" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
    migrate_changes=8 # the table, 4 indexes, the per-device tables and their index
    ;;
sqlite)
    url="sqlite://$tmp/msilo.db"
    migrate_changes=7 # the table, 4 indexes, the per-device tables
    sql() {
        python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
rows = c.execute(sys.argv[2]).fetchall()
c.commit()
for r in rows: print("|".join(str(x) for x in r))' "$tmp/msilo.db" "$1"
    }
    bin="X'0001ff1b5b324a'"
    series="g"
    with="WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 600) "
    trap 'rm -rf "$tmp"' EXIT
    ;;
*) fail "unknown backend $backend" ;;
esac
A() { "$admin" --db-url "$url" --table "$t" "$@"; }
now=$(date +%s)

# ---- migrate, and rows
out=$(A migrate 2>"$tmp/err") || fail "migrate: $(cat "$tmp/err")"
[[ "$out" == "table $t: $migrate_changes changes" ]] || fail "migrate said: $out"
grep -q "migrating table $t" "$tmp/err" || fail "migrate printed no progress"
[[ $(A migrate 2>/dev/null) == "table $t: 0 changes" ]] || fail "second migrate"

cols="src_addr, dst_addr, username, domain, inc_time, exp_time, snd_time, ctype, body, callid, extra_hdrs"
sql "INSERT INTO $t ($cols) VALUES
     ('sip:bob@example.org', 'sip:alice@example.com', 'alice', 'example.com', $((now - 100)), $((now + 3600)), 0,
      'text/plain', 'hello \"alice\"', 'c-text', 'P-Note: one'),
     ('\"Bob\" <sip:bob@example.org>', 'sip:alice@example.com', 'alice', 'example.com', $((now - 50)), $((now + 3600)),
      $((now + 60)), 'application/octet-stream', $bin, 'c-bin', NULL),
     ('sip:carol@example.org', 'sip:bob@example.com', 'bob', 'example.com', $((now - 5000)), $((now - 10)), 0,
      'text/plain', 'gone', 'c-old', NULL)" >/dev/null || fail "inserting rows"
sql "${with}INSERT INTO $t ($cols) SELECT 'sip:x@example.org', 'sip:carol@example.net', 'carol', 'example.net',
     $now, $((now + 3600)), 0, 'text/plain', 'bulk', 'c-bulk', NULL FROM $series" >/dev/null || fail "bulk rows"
id_text=$(sql "SELECT id FROM $t WHERE callid = 'c-text'")
id_bin=$(sql "SELECT id FROM $t WHERE callid = 'c-bin'")
[[ -n "$id_text" && -n "$id_bin" ]] || fail "no ids"

# ---- count
[[ $(A count alice@example.com) == 2 ]] || fail "count alice"
[[ $(A count 'sip:carol@EXAMPLE.net') == 600 ]] || fail "count carol (host case)"
out=$(A count nobody@example.com) || fail "count of an empty mailbox failed"
[[ "$out" == 0 ]] || fail "count nobody: $out"

# ---- list
out=$(A list sip:alice@example.com) || fail "list"
[[ $(wc -l <<<"$out") == 3 ]] || fail "list lines: $out"
grep -q "^$id_text .*sip:bob@example.org .*text/plain .* 13$" <<<"$out" || fail "list text row: $out"
grep -q "^$id_bin .*application/octet-stream .* 7  R$" <<<"$out" || fail "list binary row: $out"
A list alice@example.com --json >"$tmp/list.json" || fail "list --json"
python3 -m json.tool "$tmp/list.json" >/dev/null || fail "list --json is not JSON: $(cat "$tmp/list.json")"
python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
assert len(v) == 2 and v[0]["id"] == int(sys.argv[2]) and v[0]["size"] == 13, v
assert v[1]["content_type"] == "application/octet-stream" and v[1]["reminder"] > 0, v
assert v[0]["from"] == "sip:bob@example.org" and v[0]["time"] > 0, v' "$tmp/list.json" "$id_text" ||
    fail "list --json content"
[[ $(A list carol@example.net --limit 7 | wc -l) == 8 ]] || fail "list --limit"
[[ $(A list carol@example.net --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))') == 600 ]] ||
    fail "list pages through 600"
[[ $(A list nobody@example.com --json) == "[]" ]] || fail "empty list --json"

# ---- show
out=$(A show "$id_text") || fail "show text"
grep -q '^content-type:  text/plain$' <<<"$out" || fail "show header: $out"
grep -q '^  P-Note: one$' <<<"$out" || fail "show extra headers: $out"
grep -q '^hello "alice"$' <<<"$out" || fail "show body: $out"
out=$(A show "$id_bin") || fail "show binary"
grep -q 'binary, shown in hex' <<<"$out" || fail "show binary note: $out"
grep -q '00 01 ff 1b 5b 32 4a' <<<"$out" || fail "show hex dump: $out"
[[ "$out" == *$'\x1b'* ]] && fail "show wrote an escape character to the terminal"
grep -q '^reminder: ' <<<"$out" || fail "show reminder"
A show "$id_bin" --json | python3 -m json.tool >/dev/null || fail "show --json is not JSON"
[[ $(A show "$id_bin" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["body_base64"])') == "AAH/G1sySg==" ]] ||
    fail "show --json body"
[[ $(A show "$id_bin" --raw | od -An -tx1 | tr -d ' \n') == 0001ff1b5b324a ]] || fail "show --raw"
A show 999999 >/dev/null 2>"$tmp/err"; rc=$?
[[ $rc == 1 ]] || fail "show unknown id: exit $rc"
grep -q "no message with id 999999" "$tmp/err" || fail "show unknown id message"
A show abc >/dev/null 2>&1; [[ $? == 2 ]] || fail "show abc"
A show >/dev/null 2>&1; [[ $? == 2 ]] || fail "show without id"

# ---- delete
out=$(A delete "$id_text" 999999 2>/dev/null); rc=$?
[[ $rc == 1 && "$out" == "deleted 1 of 2 messages" ]] || fail "delete: $rc $out"
[[ $(A count alice@example.com) == 1 ]] || fail "count after delete"
out=$(A delete "$id_bin") || fail "delete one"
[[ "$out" == "deleted 1 of 1 message" ]] || fail "delete one said: $out"

# ---- expire
out=$(A expire) || fail "expire"
[[ "$out" == "expired 1 message" ]] || fail "expire said: $out"
[[ $(A count bob@example.com) == 0 ]] || fail "count after expire"
[[ $(A expire) == "expired 0 messages" ]] || fail "expire again"

# ---- stats
out=$(A stats) || fail "stats"
grep -q '^messages:   600$' <<<"$out" || fail "stats messages: $out"
grep -q '^owners:     1$' <<<"$out" || fail "stats owners: $out"
grep -q '^fullest:    carol@example.net (600)$' <<<"$out" || fail "stats fullest: $out"
A stats --json | python3 -m json.tool >/dev/null || fail "stats --json is not JSON"

# ---- purge, in batches with progress
out=$(A purge carol@example.net 2>"$tmp/err") || fail "purge: $(cat "$tmp/err")"
[[ "$out" == "purged 600 messages" ]] || fail "purge said: $out"
grep -q "purged 500/600" "$tmp/err" || fail "purge progress: $(cat "$tmp/err")"
A purge carol@example.net >/dev/null 2>&1; [[ $? == 1 ]] || fail "purge of nothing"
A -q purge carol@example.net 2>&1 >/dev/null | grep -q . && fail "-q still printed"
[[ $(A stats --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["messages"], d["oldest"])') == "0 None" ]] ||
    fail "stats of an empty store"

# ---- configuration: MSILO_DB_URL, -c
out=$(MSILO_DB_URL=$url "$admin" count alice@example.com --table "$t") || fail "MSILO_DB_URL"
printf '[msilo]\ndb_url=%s\ndb_table=%s\n' "$url" "$t" >"$tmp/msilo.conf"
out=$("$admin" -c "$tmp/msilo.conf" count alice@example.com) || fail "-c config"
[[ "$out" == 0 ]] || fail "-c count: $out"
printf '[msilo]\nno_such_key=1\n' >"$tmp/bad.conf"
"$admin" -c "$tmp/bad.conf" count a@b.c >/dev/null 2>&1; [[ $? == 4 ]] || fail "bad config key"
"$admin" -c "$tmp/nonexistent.conf" count a@b.c >/dev/null 2>&1; [[ $? == 4 ]] || fail "missing config"

# ---- errors
A count 'not an aor' >/dev/null 2>"$tmp/err"; rc=$?
[[ $rc == 2 ]] || fail "bad AOR: exit $rc"
grep -q "bad AOR" "$tmp/err" || fail "bad AOR message"
A list 'sip:example.com' >/dev/null 2>&1; [[ $? == 2 ]] || fail "AOR without user"
"$admin" --db-url "bogus://x" count a@b.c >/dev/null 2>&1; [[ $? == 4 ]] || fail "unknown URL scheme"
"$admin" --db-url "postgres://nobody@127.0.0.1:1/none" count a@b.c >/dev/null 2>&1; rc=$?
[[ $rc == 3 ]] || fail "unreachable PostgreSQL: exit $rc"
"$admin" --db-url "sqlite:///nonexistent-dir/x/y.db" count a@b.c >/dev/null 2>&1; rc=$?
[[ $rc == 3 ]] || fail "unopenable SQLite file: exit $rc"
env -u MSILO_DB_URL "$admin" count a@b.c >/dev/null 2>&1; [[ $? == 2 ]] || fail "no URL"
A frobnicate >/dev/null 2>&1; [[ $? == 2 ]] || fail "unknown command"
A list a@b.c --bogus >/dev/null 2>&1; [[ $? == 2 ]] || fail "unknown option"
for c in migrate count list show delete purge expire stats; do
    "$admin" "$c" --help | grep -q "^usage: msilo-admin \[OPTIONS\] $c" || fail "$c --help"
done
if [[ $backend == postgres ]]; then
    "$admin" --db-url "$url" --table "no_such_table_$$" count a@b.c >/dev/null 2>&1; rc=$?
    [[ $rc == 4 ]] || fail "absent table: exit $rc"
fi
echo "ok"
