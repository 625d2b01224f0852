#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Installs the build into a scratch DESTDIR and builds a small program against
# the *installed* libmsilo-sqlite with `pkg-config --cflags --libs msilo-sqlite`
# only; checks the soname link and the msilo-admin man page.
# Usage: test-sqlite-install.sh BUILD_DIR SANITIZE
set -euo pipefail
build=$1
# A sanitized library cannot be loaded by a program built without the
# sanitizer runtime: nothing to learn from that build here.
[[ "${2:-none}" == none ]] || exit 77
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

meson install -C "$build" --destdir "$tmp/root" --no-rebuild --quiet >/dev/null
for name in msilo msilo-sqlite; do
  pc=$(find "$tmp/root" -name "$name.pc" | head -n 1)
  [ -n "$pc" ] || { echo "$name.pc was not installed"; exit 1; }
  sed -i "s|^prefix=|prefix=$tmp/root|" "$pc"
done
export PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(pkg-config --variable=libdir msilo-sqlite)
ls "$libdir"/libmsilo-sqlite.so.1 >/dev/null   # the soname link
[ -f "$(pkg-config --variable=includedir msilo-sqlite)/msilo/sqlite.h" ] || { echo "sqlite.h not installed"; exit 1; }
find "$tmp/root" -name msilo-admin.1 | grep -q . || { echo "msilo-admin.1 not installed"; exit 1; }

cat > "$tmp/use.c" <<'C'
#include <msilo/msilo.h>
#include <msilo/sqlite.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
    msilo_store_t *s = NULL;
    if (argc < 2 || msilo_sqlite_store_new(&s, argv[1]) != 0)
        return 1;
    msilo_message_t *m = msilo_message_new();
    m->user = strdup("alice");
    m->domain = strdup("example.com");
    int res = 1;
    int64_t n = 0;
    int e = msilo_store_put(s, &m, 1, 0, &res);
    if (!e)
        e = msilo_store_count(s, NULL, NULL, &n);
    msilo_message_free(m);
    msilo_store_free(s);
    printf("stored %lld\n", (long long)n);
    return e || res || n != 1;
}
C
# the message's strings go to msilo_message_free(), i.e. g_free(): GLib's
# g_free is free() since 2.46, so strdup() is fine here
cc -std=gnu11 -Wall -Werror -o "$tmp/use" "$tmp/use.c" $(pkg-config --cflags --libs msilo-sqlite)
LD_LIBRARY_PATH="$libdir" "$tmp/use" "sqlite://$tmp/x.db"
echo "installed libmsilo-sqlite: ok"
