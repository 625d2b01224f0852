#!/usr/bin/env bash
# Installs the build into a scratch DESTDIR, then builds the in-process example
# (examples/inprocess/msilo-demo.c) against the *installed* library with
# pkg-config only, and runs it; with the test kit installed (third argument
# "kit"), builds an outside store test (kit-memory.c) and the Sofia
# transport's conformance test (tests/transport/test-sofia.c) against the
# installed libmsilo-testing with `pkg-config --cflags --libs msilo-testing`
# and runs their suites; then
# uses libmsilo as a meson subproject, with its default options, from a
# throw-away project, and checks that it stays out of the parent's way: the
# parent's `meson test` runs none of libmsilo's tests, its default build makes
# only libmsilo's libraries (no examples, benchmarks, fuzz replays, docs test,
# test kit), and its install adds only libraries, headers and .pc files (no
# bin, etc, man); then that a parent that asks for them gets the tests, the
# examples and the test kit.
# Usage: test-install.sh SOURCE_DIR BUILD_DIR kit|nokit
set -euo pipefail
src=$1
build=$2
kit=${3:-nokit}
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
ls "$libdir"/libmsilo.so.1 >/dev/null   # the soname link
for h in msilo.h engine.h sys/store.h sys/transport.h; do
  [ -f "$(pkg-config --variable=includedir msilo)/msilo/$h" ] || { echo "missing header $h"; exit 1; }
done
demo=$src/examples/inprocess
cc -std=gnu11 -Wall -Werror -o "$tmp/msilo-demo" "$demo/msilo-demo.c" \
  $(pkg-config --cflags --libs msilo)
LD_LIBRARY_PATH="$libdir" "$tmp/msilo-demo"
echo "installed library: ok"

# the test kit, as an outside implementer uses it
if [[ $kit == kit ]]; then
  kpc=$(find "$tmp/root" -name msilo-testing.pc | head -n 1)
  [ -n "$kpc" ] || { echo "msilo-testing.pc was not installed"; exit 1; }
  sed -i "s|^prefix=|prefix=$tmp/root|" "$kpc"
  ls "$libdir"/libmsilo-testing.so.1 >/dev/null
  for h in suite.h store.h transport.h fake-transport.h; do
    [ -f "$(pkg-config --variable=includedir msilo-testing)/msilo/testing/$h" ] ||
      { echo "missing header testing/$h"; exit 1; }
  done
  cc -std=gnu11 -Wall -Wextra -Werror -o "$tmp/kit-memory" "$src/tests/install/kit-memory.c" \
    $(pkg-config --cflags --libs msilo-testing)
  LD_LIBRARY_PATH="$libdir" "$tmp/kit-memory" >"$tmp/kit-memory.log" 2>&1 ||
    { cat "$tmp/kit-memory.log"; echo "the installed store suite failed"; exit 1; }
  grep -c '^\[       OK \]' "$tmp/kit-memory.log" | sed 's/^/installed store suite: tests passed: /'
  if pkg-config --exists msilo-sofia; then
    sed -i "s|^prefix=|prefix=$tmp/root|" "$(dirname "$kpc")/msilo-sofia.pc"
    cc -std=gnu11 -Wall -Werror -o "$tmp/kit-sofia" "$src/tests/transport/test-sofia.c" \
      $(pkg-config --cflags --libs msilo-testing msilo-sofia)
    LD_LIBRARY_PATH="$libdir" "$tmp/kit-sofia" >"$tmp/kit-sofia.log" 2>&1 ||
      { cat "$tmp/kit-sofia.log"; echo "the installed transport suite failed"; exit 1; }
    grep -c '^\[       OK \]' "$tmp/kit-sofia.log" | sed 's/^/installed transport suite: tests passed: /'
  fi
  echo "installed test kit: ok"
fi

# as a meson subproject, with its default options
mkdir -p "$tmp/proj/subprojects"
ln -s "$src" "$tmp/proj/subprojects/msilo"
cat > "$tmp/proj/meson.build" <<'MESON'
project('uses-msilo', 'c')
dep = dependency('msilo', fallback : ['msilo', 'libmsilo_dep'])
demo = executable('msilo-demo', 'msilo-demo.c', dependencies : dep)
test('parent-demo', demo)
MESON
cp "$demo/msilo-demo.c" "$tmp/proj/"
unset PKG_CONFIG_PATH
pb=$tmp/proj/build
meson setup "$pb" "$tmp/proj" --force-fallback-for=msilo --prefix=/usr >/dev/null
ninja --quiet -C "$pb"
"$pb/msilo-demo"

fail=0
# libmsilo's targets: executables none at all, by default only libraries
bad=$(meson introspect --targets "$pb" | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    if t["subproject"] != "msilo":
        continue
    if t["type"] == "executable" or (t["build_by_default"] and not t["type"].endswith(" library")):
        print(t["type"], t["name"], "(built by default)" if t["build_by_default"] else "")
')
[ -z "$bad" ] || { echo "subproject: targets that are not libraries:"; echo "$bad"; fail=1; }
bad=$(find "$pb/subprojects/msilo" -type f -perm -u+x ! -name '*.so' ! -name '*.so.*')
[ -z "$bad" ] || { echo "subproject: the default build made programs:"; echo "$bad"; fail=1; }
ls "$pb"/subprojects/msilo/lib/libmsilo.so* >/dev/null || fail=1

# the parent's meson test: its own test, and only that
meson test -C "$pb" --no-rebuild >/dev/null || { echo "subproject: the parent's meson test failed"; fail=1; }
ran=$(python3 -c '
import json, sys
print(", ".join(sorted(json.loads(l)["name"] for l in open(sys.argv[1]))))
' "$pb/meson-logs/testlog.json")
[[ $ran == parent-demo || $ran == "uses-msilo / parent-demo" ]] ||
  { echo "subproject: the parent's meson test ran: $ran"; fail=1; }

# the parent's install: libraries, headers and .pc files, nothing else
meson install -C "$pb" --destdir "$tmp/proot" --no-rebuild --quiet >/dev/null
(cd "$tmp/proot" && find . ! -type d | sed 's|^\./||' | sort) > "$tmp/installed"
bad=$(grep -Ev '^usr/lib[^/]*(/[^/]+)?/libmsilo[-a-z]*\.so(\.[0-9]+)*$|^usr/lib[^/]*(/[^/]+)?/pkgconfig/msilo[-a-z]*\.pc$|^usr/include/msilo/([a-z]+/)?[a-z-]+\.h$' "$tmp/installed" || true)
[ -z "$bad" ] || { echo "subproject: the parent's install added:"; echo "$bad"; fail=1; }
for want in '/libmsilo\.so\.1$' '/pkgconfig/msilo\.pc$' '^usr/include/msilo/msilo\.h$' '^usr/include/msilo/sys/store\.h$'; do
  grep -Eq "$want" "$tmp/installed" || { echo "subproject: the parent's install lacks $want"; fail=1; }
done

# a parent that asks gets them (configured only, nothing built)
meson setup "$tmp/proj/build-asked" "$tmp/proj" --force-fallback-for=msilo --prefix=/usr \
  -Dmsilo:tests=enabled -Dmsilo:examples=enabled -Dmsilo:benchmarks=enabled \
  -Dmsilo:testing=enabled >/dev/null
n=$(meson introspect --tests "$tmp/proj/build-asked" | python3 -c '
import json, sys
print(sum(1 for t in json.load(sys.stdin) if any(s.startswith("msilo:") for s in t["suite"])))
')
[ "$n" -gt 0 ] || { echo "subproject: -Dmsilo:tests=enabled gave no tests"; fail=1; }
meson introspect --installed "$tmp/proj/build-asked" | grep -q '/usr/bin/msilo-' ||
  { echo "subproject: -Dmsilo:examples=enabled installs no programs"; fail=1; }
meson introspect --targets "$tmp/proj/build-asked" | grep -q '"bench-engine"' ||
  { echo "subproject: -Dmsilo:benchmarks=enabled builds no benchmark"; fail=1; }
meson introspect --installed "$tmp/proj/build-asked" | grep -q '/pkgconfig/msilo-testing\.pc"' ||
  { echo "subproject: -Dmsilo:testing=enabled installs no test kit"; fail=1; }
[ $fail = 0 ] || exit 1
echo "meson subproject: ok (libraries only; $n tests when asked)"
