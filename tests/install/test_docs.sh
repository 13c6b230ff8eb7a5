#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The configuration reference exists once, in lib/conf.c's table of keys:
# the admin guide's table, jobshm.conf(5) and configs/jobshm.conf must
# agree with it, and every man page carries the Makefile's version.
# libjobshm(3) has the prototype of every function of lib/jobshm.h; every relative
# link in the Markdown docs leads to a file (and heading) that exists.
set -euo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "test_docs: $*" >&2; exit 1; }
cli=cli/jobshm
keys_doc=doc/admin-guide.md	# the Makefile's docs rule rewrites the table there
table=$(sed -n '/^<!-- keys: begin/,/^<!-- keys: end/p' $keys_doc | sed '1d;$d')
[ -n "$table" ] || fail "$keys_doc has no configuration table between the keys markers"
[ "$table" = "$($cli check-config --keys=md)" ] ||
	fail "$keys_doc's configuration table differs from the keys the loader knows (run make docs)"
version=$(make -s print-version)
for m in man/jobshm.1 man/jobshm.8 man/enqueue_jobshm.1 man/jobshm.conf.5 man/libjobshm.3 \
	 man/pam_jobshm.8; do
	grep -m1 "^\.TH" "$m" | grep -q "\"jobshm $version\"" || fail "$m is not version $version"
	# renders clean: no troff warning (a line starting with '.' eaten as
	# a macro, a missing font, a bad escape)
	w=$(groff -ww -man -Tutf8 -z "$m" 2>&1) || true
	[ -z "$w" ] || fail "$m does not render clean under groff -ww: $w"
done
$cli check-config --keys | grep -v '^ ' | while read -r key rest; do
	grep -q "^\.B $key\$" man/jobshm.conf.5 || fail "jobshm.conf(5) lacks $key"
	def=$(sed 's/.*default \(.*\))$/\1/' <<<"$rest")
	line=$(grep -E "^#? ?$key = " configs/jobshm.conf) ||
		fail "configs/jobshm.conf does not show $key"
	case "$line" in
	"#"*) ;;	# a commented example need not be the default
	*) [ "${line#*= }" = "$def;" ] ||
		fail "configs/jobshm.conf sets $key to ${line#*= } but its default is $def" ;;
	esac
done
# libjobshm(3) documents the whole C API: every function of jobshm.h has
# its prototype there (a .BI line "type name(...")
for f in $(grep -oE 'jobshm_[a-z0-9_]+\(' lib/jobshm.h | tr -d '(' | sort -u); do
	grep -qE "^\.BI \"[^\"]*[ *]$f\(" man/libjobshm.3 ||
		fail "libjobshm(3) does not document $f (lib/jobshm.h)"
done
# every relative link in the Markdown docs resolves: the file (or
# directory) exists, and an anchor names a heading of that file as
# GitHub spells it (lowercase, punctuation dropped, spaces as -)
/usr/bin/python3 - README.md doc/*.md bench/README.md <<'PY' || fail "broken links in the docs"
import os, re, sys
def lines(path):
    fence = False
    for line in open(path, encoding="utf-8"):
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        if not fence:
            yield line
def anchors(path):
    seen, out = {}, set()
    for line in lines(path):
        m = re.match(r"#{1,6} +(.*?) *#*$", line.rstrip("\n"))
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out
bad = 0
for doc in sys.argv[1:]:
    for line in lines(doc):
        line = re.sub(r"`[^`]*`", "", line)
        for target in re.findall(r"\]\(([^()\s]+)\)", line):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, frag = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
            if not os.path.exists(dest):
                print(f"test_docs: {doc}: link to {target}: no {dest}", file=sys.stderr)
                bad += 1
            elif frag and (os.path.isdir(dest) or not dest.endswith(".md")
                           or frag not in anchors(dest)):
                print(f"test_docs: {doc}: link to {target}: no heading #{frag} in {dest}",
                      file=sys.stderr)
                bad += 1
sys.exit(1 if bad else 0)
PY
# the example configuration itself is valid
$cli check-config configs/jobshm.conf >/dev/null || fail "configs/jobshm.conf does not load"
echo "test_docs: 1 passed, 0 failed"
