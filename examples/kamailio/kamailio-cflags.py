#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# kamailio-cflags.py: prints the Kamailio source tree of the installed
# Kamailio, then one per line the compile flags of that tree (its
# src/config.mak, written by `make cfg` in scripts/deps): the defines the
# Debian binary was built with, so that a module built with them loads into
# /usr/sbin/kamailio. The tree: $MSILO_KAMAILIO_SRC, else
# ${MSILO_KAMAILIO_SRC_CACHE:-/var/cache/msilo-kamailio-src}/kamailio-<version
# of the installed package>. Exit status 1 when it is absent or not configured.
import os, re, shlex, subprocess, sys

src = os.environ.get('MSILO_KAMAILIO_SRC')
if not src:
    try:
        ver = subprocess.run(['dpkg-query', '-W', '-f=${Version}', 'kamailio'],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        sys.exit(1)
    ver = ver.split(':')[-1].split('-')[0]
    cache = os.environ.get('MSILO_KAMAILIO_SRC_CACHE', '/var/cache/msilo-kamailio-src')
    src = cache + '/kamailio-' + ver
try:
    text = open(src + '/src/config.mak').read()
except OSError:
    sys.exit(1)

def var(name):
    m = re.search(r'^' + name + r'=(.*)$', text, re.M)
    return m.group(1) if m else ''

out = shlex.split(var('C_DEFS'))
# the flags that change the ABI or the memory manager's macros
out += [f for f in shlex.split(var('CC_PMUTEX_OPTS')) if f.startswith('-D')]
if not any(f.startswith('-DVERSIONVAL=') for f in out):
    sys.exit(1)
print('\n'.join([src] + out))
