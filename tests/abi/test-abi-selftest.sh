#!/usr/bin/env bash
# Self-test of the ABI check: builds a small library the way libmsilo is
# built (-g, -fvisibility=hidden), dumps it with scripts/abi-baseline --dump,
# then variants of it, and runs abi-check.sh on each. The compatible ones (a
# member appended, a function added, a statistic added before
# MSILO_STAT_COUNT_) must pass; the others must fail: a member removed,
# moved or retyped (also within the same size), a function removed, a
# function's parameters changed, an enumerator renumbered, a library gone.
# Proves the `abi` test can fail, without touching the real libraries.
# Usage: test-abi-selftest.sh SOURCE_DIR CC...
set -euo pipefail
src=$1
shift
cc=("$@")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# one header, in variants selected by macros
mkdir -p "$tmp/inc/msilo"
cat > "$tmp/inc/msilo/selftest.h" <<'H'
#define API __attribute__((visibility("default")))
typedef struct msilo_selftest_item {
    int a;
#ifndef REMOVE_MEMBER
#ifdef RETYPE_MEMBER
    short b;
#else
    long b;
#endif
#endif
#ifdef APPEND_MEMBER
    long c;
#endif
} msilo_selftest_item_t;
#ifdef CHANGE_PARAMS
API long msilo_selftest_get(const msilo_selftest_item_t *it, int which);
#else
API long msilo_selftest_get(const msilo_selftest_item_t *it);
#endif
#ifndef REMOVE_FUNCTION
API int msilo_selftest_old(void);
#endif
#ifdef ADD_FUNCTION
API int msilo_selftest_new(void);
#endif
typedef enum msilo_stat {
    MSILO_STAT_A = 0,
#ifdef INSERT_STAT
    MSILO_STAT_INSERTED,
#endif
    MSILO_STAT_B,
#ifdef ADD_STAT
    MSILO_STAT_C,
#endif
    MSILO_STAT_COUNT_
} msilo_stat_t;
API const char *msilo_selftest_stat_name(msilo_stat_t s);
typedef struct msilo_selftest_pair {
#ifdef SWAP_MEMBERS
    long y, x;
#elif defined(RETYPE_SAME_SIZE)
    long x;
    double y;
#else
    long x, y;
#endif
} msilo_selftest_pair_t;
API long msilo_selftest_pair_x(const msilo_selftest_pair_t *p);
H
cat > "$tmp/lib.c" <<'C'
#include <msilo/selftest.h>
#ifdef CHANGE_PARAMS
long msilo_selftest_get(const msilo_selftest_item_t *it, int which) { return it->a + which; }
#else
long msilo_selftest_get(const msilo_selftest_item_t *it) { return it->a; }
#endif
#ifndef REMOVE_FUNCTION
int msilo_selftest_old(void) { return 1; }
#endif
#ifdef ADD_FUNCTION
int msilo_selftest_new(void) { return 2; }
#endif
const char *msilo_selftest_stat_name(msilo_stat_t s) { return s == MSILO_STAT_A ? "a" : "b"; }
long msilo_selftest_pair_x(const msilo_selftest_pair_t *p) { return p->x; }
C

# variant DEFINES... -> $tmp/VARIANT/libmsilo-selftest.abi
dump() {
  local v=$1
  shift
  mkdir -p "$tmp/$v"
  "${cc[@]}" -g -O2 -fPIC -shared -fvisibility=hidden -I"$tmp/inc" "$@" \
    -o "$tmp/$v/libmsilo-selftest.so.1" "$tmp/lib.c"
  "$src/scripts/abi-baseline" --dump "$tmp/inc" "$tmp/$v" "$tmp/$v/libmsilo-selftest.so.1"
}

dump base
fail=0
expect() {
  local want=$1 v=$2
  shift 2
  dump "$v" "$@"
  local out rc=0
  out=$("$src/tests/abi/abi-check.sh" "$tmp/base" "$tmp/$v") || rc=$?
  if { [ "$want" = pass ] && [ $rc -ne 0 ]; } || { [ "$want" = fail ] && [ $rc -eq 0 ]; }; then
    echo "WRONG: $v should $want, abi-check.sh exited $rc:"
    echo "$out"
    fail=1
  else
    echo "$v: ${want/pass/passe}s as it should ($(echo "$out" | head -n 1))"
  fi
}
expect pass unchanged
expect pass append-member -DAPPEND_MEMBER
expect pass add-function -DADD_FUNCTION
expect fail remove-member -DREMOVE_MEMBER
expect fail retype-member -DRETYPE_MEMBER
expect fail swap-members -DSWAP_MEMBERS
expect fail retype-same-size -DRETYPE_SAME_SIZE
expect fail remove-function -DREMOVE_FUNCTION
expect fail change-params -DCHANGE_PARAMS
expect pass add-statistic -DADD_STAT
expect fail renumber-statistic -DINSERT_STAT
# a library gone from the build
mkdir -p "$tmp/none"
rc=0
"$src/tests/abi/abi-check.sh" "$tmp/base" "$tmp/none" >/dev/null || rc=$?
if [ $rc -eq 0 ]; then echo "WRONG: a removed library passed"; fail=1; else echo "removed-library: fails as it should"; fi
exit $fail
