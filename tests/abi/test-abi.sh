#!/usr/bin/env bash
# The `abi` test: the ABI of the libraries this build installs against the
# baseline kept here (*.abi, written by scripts/abi-baseline). An accidental
# ABI break fails it; a deliberate one regenerates the baseline and bumps the
# soname in the same commit (doc/design.md, "ABI").
# Usage: test-abi.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$src/scripts/abi-baseline" "$build" "$tmp/now" >/dev/null
exec "$src/tests/abi/abi-check.sh" "$src/tests/abi" "$tmp/now"
