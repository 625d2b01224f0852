#!/usr/bin/env python3
# Reads abidiff's leaf-changes report (abidiff -l) on stdin and decides
# whether every change in it is an addition: functions and variables added
# (none removed or changed) and structs that only grew by members appended
# past their old end. Prints each change that is not one and exits 1; exits 0
# when all are. (libabigail's own has_data_member_inserted_at = end
# suppression also hides members that moved or changed type within an
# unchanged size, so tests/abi does not use it.)
import re
import sys

bad = []
summary = re.compile(r"^Removed/Changed/Added (functions|variables) summary: "
                     r"(\d+) Removed(?: \([^)]*\))?, (\d+) Changed")
size = re.compile(r"^  type size changed from (\d+) to (\d+) \(in bits\)$")
inserted = re.compile(r"^    '.*', at offset (\d+) \(in bits\)$")
block = None  # (name, old size) of the type block being read
in_insertions = False
for line in sys.stdin.read().splitlines():
    m = summary.match(line)
    if m:
        if int(m.group(2)) or int(m.group(3)):
            bad.append(line)
        continue
    if re.match(r"^'.*' changed:$", line):
        block = [line, None]
        in_insertions = False
        continue
    if block is None or not line.strip():
        continue
    if not line.startswith("  "):  # a section of the report that is not a type
        block = None
        continue
    m = size.match(line)
    if m and int(m.group(2)) > int(m.group(1)):
        block[1] = int(m.group(1))
        continue
    if re.match(r"^  \d+ data member insertions?:$", line):
        in_insertions = True
        continue
    m = inserted.match(line)
    if in_insertions and m and block[1] is not None and int(m.group(1)) >= block[1]:
        continue
    in_insertions = False
    bad.append(f"{block[0]} {line.strip()}")

for b in bad:
    print(b)
sys.exit(1 if bad else 0)
