#!/usr/bin/env bash
# Compares the ABI of libraries (abidw XML, scripts/abi-baseline) against a
# baseline: fails on a removed library, a removed symbol, or any change
# abidiff reports (compatible.abignore aside) that is not an addition (a
# member removed, moved or retyped, a function's signature changed, an
# enumerator renumbered, ...: abi-report.py decides); prints a note for
# additions (new functions, new libraries, members appended to a struct).
# Usage: abi-check.sh BASELINE_DIR CURRENT_DIR
# abidiff's exit status is a bit field: 1 error, 2 usage error, 4 ABI change,
# 8 incompatible ABI change (a removed symbol, among others).
set -uo pipefail
base=$1
now=$2
here=$(cd "$(dirname "$0")" && pwd)
suppr=$here/compatible.abignore
command -v abidiff >/dev/null ||
  { echo "abi-check: abidiff not found: install abigail-tools (scripts/deps)"; exit 1; }

fail=0
shopt -s nullglob
baselines=("$base"/*.abi)
[ ${#baselines[@]} -gt 0 ] || { echo "abi-check: no baseline in $base"; exit 1; }
for b in "${baselines[@]}"; do
  name=$(basename "$b" .abi)
  n=$now/$name.abi
  if [ ! -f "$n" ]; then
    echo "FAIL $name: in the baseline, no longer built and installed"
    fail=1
    continue
  fi
  # -l: leaf changes only, each change once, at the type it is in
  report=$(abidiff -l --suppressions "$suppr" "$b" "$n")
  rc=$?
  if (( rc & 3 )); then
    echo "FAIL $name: abidiff could not compare (exit $rc):"
    echo "$report"
    fail=1
  elif (( rc & 8 )); then
    echo "FAIL $name: incompatible ABI change (abidiff exit $rc: ABIDIFF_ABI_INCOMPATIBLE_CHANGE):"
    echo "$report"
    fail=1
  elif (( rc & 4 )); then
    if why=$(echo "$report" | python3 "$here/abi-report.py"); then
      # a note, not an error: the lead regenerates the baseline after merging
      echo "note $name: additions since the baseline (compatible):"
      echo "$report" | sed 's/^/  /'
    else
      echo "FAIL $name: ABI change that is not an addition:"
      echo "$why" | sed 's/^/  /'
      echo "abidiff's report:"
      echo "$report" | sed 's/^/  /'
      fail=1
    fi
  else
    echo "ok   $name"
  fi
done
for n in "$now"/*.abi; do
  [ -f "$base/$(basename "$n")" ] ||
    echo "note $(basename "$n" .abi): a new library, not in the baseline yet"
done
exit $fail
