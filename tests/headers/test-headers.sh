#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every public header (include/msilo/*.h, include/msilo/sys/*.h and the test
# kit's include/msilo/testing/*.h) compiles on its own with -Wall -Wextra
# -Wpedantic -Werror: alone and included twice
# (the include guard), after <glib.h> and before it. As C99 and C11 ("c"),
# with the build's C compiler and with gcc and clang when they are installed;
# as C++17 ("c++") with every C++ compiler found ($CXX, c++, g++, clang++).
# Then a unit that uses the initialisers: the _INIT macros in C; in C++ the
# init functions, linked against the built libmsilo and run (compiled only in
# a sanitizer build, whose library needs the sanitizer runtime).
# Exits 77 (skip) only when the C++ check finds no C++ compiler.
# Usage: test-headers.sh c|c++ INCLUDE_DIR LIBMSILO SANITIZE [BUILD_CC...]
set -uo pipefail
lang=$1
inc=$2
lib=$3
sanitize=$4
shift 4

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

glib_cflags=$(pkg-config --cflags glib-2.0) || { echo "pkg-config --cflags glib-2.0 failed"; exit 1; }
warn=(-Wall -Wextra -Wpedantic -Werror)

# The compilers, each once (c++ and g++ are often the same program).
compilers=()
seen=" "
add_compiler() {
  local path real
  path=$(command -v "$1" 2>/dev/null) || return 0
  real=$(readlink -f "$path")
  [[ $seen == *" $real "* ]] && return 0
  seen+="$real "
  compilers+=("$*")
}
if [[ $lang == c ]]; then
  # the build's compiler may be a command line ("ccache cc")
  [[ $# -gt 0 ]] && { [[ $1 == ccache ]] && shift; [[ $# -gt 0 ]] && add_compiler "$@"; }
  add_compiler gcc
  add_compiler clang
  stds=(c99 c11)
  ext=c
else
  [[ -n ${CXX:-} ]] && add_compiler $CXX
  add_compiler c++
  add_compiler g++
  add_compiler clang++
  stds=(c++17)
  ext=cpp
  if [[ ${#compilers[@]} -eq 0 ]]; then
    echo "SKIP: no C++ compiler found (looked for \$CXX, c++, g++, clang++): the headers were not compiled as C++17"
    exit 77
  fi
fi

headers=()
for h in "$inc"/msilo/*.h "$inc"/msilo/sys/*.h; do
  headers+=("${h#"$inc"/}")
done
[[ ${#headers[@]} -gt 0 ]] || { echo "no headers under $inc/msilo"; exit 1; }
# the test kit's (libmsilo-testing) include <glib.h> themselves: every unit
# but use-init, which is compiled without GLib's flags
kit_headers=()
for h in "$inc"/msilo/testing/*.h; do
  [[ -e $h ]] && kit_headers+=("${h#"$inc"/}")
done

# one unit per header and placement of glib.h
n=0
for h in "${headers[@]}" "${kit_headers[@]}"; do
  base=${h//\//_}
  printf '#include <%s>\n#include <%s>\n' "$h" "$h" > "$tmp/$n-alone-$base.$ext"
  printf '#include <glib.h>\n#include <%s>\n' "$h" > "$tmp/$n-glib-first-$base.$ext"
  printf '#include <%s>\n#include <glib.h>\n' "$h" > "$tmp/$n-glib-after-$base.$ext"
  n=$((n + 1))
done
all_includes=$(printf '#include <%s>\n' "${headers[@]}")

# A GMainContext * from GLib is what msilo_engine_new() takes.
cat > "$tmp/use-glib.$ext" <<EOF
#include <glib.h>
$all_includes
$(printf '#include <%s>\n' "${kit_headers[@]}")
int use_ctx(msilo_engine_t **e, msilo_store_t *s, GMainContext *ctx);
int use_ctx(msilo_engine_t **e, msilo_store_t *s, GMainContext *ctx)
{
    return msilo_engine_new(e, NULL, s, NULL, ctx);
}
EOF

if [[ $lang == c ]]; then
  cat > "$tmp/use-init.c" <<EOF
$all_includes
unsigned use_init(void);
unsigned use_init(void)
{
    msilo_request_t r = MSILO_REQUEST_INIT;
    msilo_store_t s = MSILO_STORE_INIT;
    msilo_transport_t t = MSILO_TRANSPORT_INIT;
    return r.version + s.version + t.version;
}
EOF
else
  cat > "$tmp/use-init.cpp" <<EOF
$all_includes
#include <cstdio>

namespace {
struct my_store {
    msilo_store_t base;
    int own;
};
} // namespace

int main()
{
    msilo_request_t r;
    if (msilo_request_init(&r, MSILO_REQUEST_VERSION) != 0)
        return 1;
    my_store s;
    s.own = 42;
    if (msilo_store_init(&s.base, MSILO_STORE_VERSION) != 0 ||
        s.base.version != MSILO_STORE_VERSION || s.base.put != nullptr || s.own != 42)
        return 1;
    msilo_transport_t t;
    if (msilo_transport_init(&t, MSILO_TRANSPORT_VERSION) != 0 ||
        msilo_transport_check(&t) != MSILO_EINVAL) // no name, no methods yet
        return 1;
    if (r.version != MSILO_REQUEST_VERSION || r.expires != -1 ||
        r.header_size != sizeof(msilo_header_t))
        return 1;
    std::printf("init functions from C++: ok\n");
    return 0;
}
EOF
fi

fail=0
compile() { # COMMAND...: runs it; prints it and its output when it fails
  local out
  if ! out=$("$@" 2>&1); then
    echo "FAILED: $*"
    echo "$out"
    fail=1
    return 1
  fi
}
ci=0
for c in "${compilers[@]}"; do
  read -r -a cmd <<< "$c"
  ci=$((ci + 1))
  for std in "${stds[@]}"; do
    units=0
    for u in "$tmp"/[0-9]*."$ext" "$tmp/use-glib.$ext"; do
      # shellcheck disable=SC2086 # glib_cflags is a list of flags
      compile "${cmd[@]}" -std="$std" "${warn[@]}" -fsyntax-only -I"$inc" $glib_cflags "$u" && units=$((units + 1))
    done
    if [[ $lang == c ]]; then
      compile "${cmd[@]}" -std="$std" "${warn[@]}" -fsyntax-only -I"$inc" "$tmp/use-init.c" && units=$((units + 1))
    elif [[ $sanitize == none ]]; then
      exe="$tmp/use-init-$ci"
      if compile "${cmd[@]}" -std="$std" "${warn[@]}" -I"$inc" -o "$exe" "$tmp/use-init.cpp" "$lib"; then
        LD_LIBRARY_PATH="$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$exe" || { echo "FAILED: $exe"; fail=1; }
        units=$((units + 1))
      fi
    else
      compile "${cmd[@]}" -std="$std" "${warn[@]}" -fsyntax-only -I"$inc" "$tmp/use-init.cpp" && units=$((units + 1))
    fi
    echo "$c -std=$std: $units units clean ($((${#headers[@]} + ${#kit_headers[@]})) headers)"
  done
done
exit $fail
