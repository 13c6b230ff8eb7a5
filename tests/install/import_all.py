#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""import_all.py SITE: an installed copy of the jobshm package holds every
module of python/jobshm/ (no more, no fewer), and each imports from SITE.

Run it with python3 -I (no PYTHONPATH, no script directory, no user site):
SITE goes first on sys.path, so the source tree's python/ is never used."""
import importlib
import os
import sys

site = os.path.abspath(sys.argv[1])
src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                   "python", "jobshm")


def modules(d):
    return sorted(f for f in os.listdir(d) if f.endswith(".py"))


if not os.path.isdir(os.path.join(site, "jobshm")):
    sys.exit(f"import_all: no {site}/jobshm")
want, got = modules(src), modules(os.path.join(site, "jobshm"))
if want != got:
    sys.exit(f"import_all: {site}/jobshm lacks {sorted(set(want) - set(got))}"
             f" and has {sorted(set(got) - set(want))} beyond python/jobshm/")
sys.path.insert(0, site)
for f in want:
    name = "jobshm" if f == "__init__.py" else "jobshm." + f[:-3]
    path = importlib.import_module(name).__file__
    if not path.startswith(site + "/"):
        sys.exit(f"import_all: {name} came from {path}, not from {site}")
print(f"import_all: {len(want)} modules from {site}")
