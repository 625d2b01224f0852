#!/usr/bin/env bash
# The installed documentation (-Ddocs): `meson install --tags doc` into a
# scratch DESTDIR puts the HTML API reference and the guides under
# share/doc/msilo, and the reference documents the public API (every
# function of engine.h has its entry) and carries both embedding guides.
# Usage: test-docs-install.sh BUILD_DIR
set -euo pipefail
build=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --destdir "$tmp" --no-rebuild --tags doc --quiet >/dev/null
doc=$(find "$tmp" -type d -path '*/share/doc/msilo' | head -n 1)
[ -n "$doc" ] || { echo "nothing installed under share/doc/msilo"; exit 1; }
fail=0
for f in embedding.md embedding-sofia.md design.md admin-guide.md api/html/index.html; do
  [ -s "$doc/$f" ] || { echo "missing $f"; fail=1; }
done
html=$doc/api/html
grep -l 'Embedding libmsilo in a SIP server' "$html"/*.html >/dev/null ||
  { echo "the reference has no embedding guide page"; fail=1; }
grep -l 'Embedding libmsilo on Sofia-SIP NTA' "$html"/*.html >/dev/null ||
  { echo "the reference has no Sofia recipe page"; fail=1; }
src=$(dirname "$0")/../../include/msilo/engine.h
for fn in $(grep -o 'MSILO_API [^(]*(' "$src" | grep -o 'msilo_[a-z_0-9]*' | sort -u); do
  grep -q "$fn" "$html/engine_8h.html" || { echo "engine.h reference lacks $fn"; fail=1; }
done
[ $fail = 0 ] && echo "installed documentation: ok"
exit $fail
