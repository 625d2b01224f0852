#!/usr/bin/env bash
# Installs the build into a scratch DESTDIR, then builds the in-process example
# (examples/inprocess: msilo-demo.c and its fake-transport.c) against the
# *installed* library with pkg-config only, and runs it; then uses libmsilo as
# a meson subproject from a throw-away project.
# Usage: test-install.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

meson install -C "$build" --destdir "$tmp/root" --no-rebuild --quiet >/dev/null
pc=$(find "$tmp/root" -name msilo.pc | head -n 1)
[ -n "$pc" ] || { echo "msilo.pc was not installed"; exit 1; }
# point the installed .pc at the staging root (what a package's post-install
# location would be); glib and the others keep coming from the system
sed -i "s|^prefix=|prefix=$tmp/root|" "$pc"
export PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(pkg-config --variable=libdir msilo)
ls "$libdir"/libmsilo.so.0 >/dev/null   # the soname link
for h in msilo.h engine.h sys/store.h sys/transport.h; do
  [ -f "$(pkg-config --variable=includedir msilo)/msilo/$h" ] || { echo "missing header $h"; exit 1; }
done
demo=$src/examples/inprocess
cc -std=gnu11 -Wall -Werror -o "$tmp/msilo-demo" "$demo/msilo-demo.c" "$demo/fake-transport.c" \
  $(pkg-config --cflags --libs msilo)
LD_LIBRARY_PATH="$libdir" "$tmp/msilo-demo"
echo "installed library: ok"

# as a meson subproject
mkdir -p "$tmp/proj/subprojects"
ln -s "$src" "$tmp/proj/subprojects/msilo"
cat > "$tmp/proj/meson.build" <<'MESON'
project('uses-msilo', 'c')
dep = dependency('msilo', fallback : ['msilo', 'libmsilo_dep'],
  default_options : ['tests=disabled', 'examples=disabled', 'sofia=disabled', 'postgresql=disabled'])
executable('msilo-demo', 'msilo-demo.c', 'fake-transport.c', dependencies : dep)
MESON
cp "$demo/msilo-demo.c" "$demo/fake-transport.c" "$demo/fake-transport.h" "$tmp/proj/"
unset PKG_CONFIG_PATH
meson setup "$tmp/proj/build" "$tmp/proj" --force-fallback-for=msilo >/dev/null
ninja --quiet -C "$tmp/proj/build"
"$tmp/proj/build/msilo-demo"
echo "meson subproject: ok"
