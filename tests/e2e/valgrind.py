#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""msilo-server end-to-end under valgrind memcheck, once: the basic methods,
the registrar, forwarding, store and dump (UDP and TCP, binary body), retries,
the hostile-request table, Digest authentication and, with
MSILO_TEST_PG_URL, the PostgreSQL store across a restart. Every server runs
as `valgrind --leak-check=full`; the test fails on any memcheck error or any
definitely lost block (possibly lost blocks, e.g. GLib's signal thread, are
not errors).

  valgrind.py --server build/examples/msilo-server/msilo-server \
      --sample examples/msilo-server/msilo-server.conf [--valgrind /usr/bin/valgrind]

Exit status: 0 clean, 1 errors or leaks, 77 no valgrind.
"""
import argparse
import glob
import os
import re
import shutil
import stat
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import e2e  # noqa: E402
import bad_input  # noqa: E402
import security  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--sample", required=True)
    ap.add_argument("--valgrind", default=shutil.which("valgrind"))
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if not args.valgrind:
        print("SKIP: valgrind not found")
        return 77
    tmp = tempfile.mkdtemp(prefix="msilo-valgrind-")
    # the tests start "the server": make that valgrind + the server
    wrapper = os.path.join(tmp, "msilo-server")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec %s -q --leak-check=full --show-leak-kinds=definite "
                "--errors-for-leak-kinds=definite --error-exitcode=99 --num-callers=30 "
                "--log-file=%s/vg-%%p.log %s \"$@\"\n"
                % (args.valgrind, tmp, os.path.abspath(args.server)))
    os.chmod(wrapper, stat.S_IRWXU)
    ns = argparse.Namespace(server=wrapper, sample=args.sample, sipp=None, keep=args.keep)
    e2e.ARGS = ns
    security.ARGS = ns

    tests = [e2e.test_basic_methods, e2e.test_registrar, e2e.test_online_forward,
             e2e.test_binary_body_tcp, e2e.test_retry_after_failure, e2e.test_configured_server,
             lambda t: bad_input.test_bad_input(t), security.test_register_digest,
             security.test_message_digest]
    names = ["basic_methods", "registrar", "online_forward", "binary_body_tcp",
             "retry_after_failure", "configured_server", "bad_input", "register_digest",
             "message_digest"]
    if os.environ.get("MSILO_TEST_PG_URL"):
        tests.append(e2e.test_pg_restart)
        names.append("pg_restart")
    failed = []
    try:
        failed, skipped = e2e.run_each(list(zip(names, tests)), tmp, " under valgrind")
        failed += skipped
        logs = sorted(glob.glob(os.path.join(tmp, "vg-*.log")))
        print("%d servers ran under valgrind" % len(logs))
        if not logs:
            failed.append("no valgrind log")
        for path in logs:
            text = e2e.read(path)
            # -q: a clean run writes nothing; a leak or error writes its record
            if re.search(r"definitely lost|Invalid|uninitialised|Mismatched|overlap|"
                         r"ERROR SUMMARY: [1-9]", text):
                failed.append(os.path.basename(path))
                print("memcheck: %s\n%s" % (path, text[:6000]))
    finally:
        e2e.finish(tmp, failed, args.keep)
    print("valgrind: %s" % ("clean" if not failed else "FAILED: %s" % failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
