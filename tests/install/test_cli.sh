#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The admin command's command line (issue 31), without Slurm: global
# options before the command and each command's own after it; usage
# errors in two lines and exit 2; per-command help and `jobshm help`;
# exec's --node wherever it is; --json always one whole document, with
# its strings escaped, for status, report, check-config and sweep.
#   tests/install/test_cli.sh [CLI]     (default: cli/jobshm)
# shellcheck disable=SC2015	# "A && B || fail": fails when A or B does
set -euo pipefail
cd "$(dirname "$0")/../.."
cli=$(realpath "${1:-cli/jobshm}")
py=/usr/bin/python3
tmp=$(mktemp -d /tmp/jobshm-cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
unset SLURM_CONF JOBSHM_CONF	# no slurmctld is asked, no other file read
passed=0 failed=0 skipped=0

conf=$tmp/jobshm.conf
mkdir -m 700 "$tmp/base"
printf 'base_path = "%s/base/%%n";\n' "$tmp" >"$conf"
touch "$tmp/file"	# a base_path through a file: the listing fails
printf 'base_path = "%s/file/%%n";\n' "$tmp" >"$tmp/unlistable.conf"
printf 'base_path = "%s/base/%%n";\nbogus_key = 1;\n' "$tmp" >"$tmp/broken.conf"

# run ARGS...: $out, $err, $rc of the CLI
run() {
	rc=0
	"$cli" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || rc=$?
	out=$(cat "$tmp/out")
	err=$(cat "$tmp/err")
}
# in a check (a subshell): its failure, with what the CLI said
fail() {
	printf 'test_cli: %s\n  rc=%s\n  stdout: %s\n  stderr: %s\n' "$1" \
		"${rc-}" "${out-}" "${err-}" >&2
	exit 1
}
skip() { echo "test_cli: $1: SKIPPED ($2)"; exit 77; }
is_json() { "$py" -m json.tool <<<"$1" >/dev/null 2>&1; }
# json_eq DOC EXPR VALUE: Python's repr of EXPR on the document d
json_eq() {
	[ "$("$py" -c 'import json, sys; d = json.loads(sys.argv[1]); print(repr(eval(sys.argv[2])))' "$1" "$2" 2>&1)" = "$3" ]
}
check() {
	local rc=0
	(set +e; "$@") || rc=$?
	case $rc in
	0) passed=$((passed + 1)) ;;
	77) skipped=$((skipped + 1)) ;;
	*) failed=$((failed + 1)); echo "test_cli: FAILED: $1" >&2 ;;
	esac
}

# 3. a wrong option: two lines, as sbatch says it, exit 2, nothing on stdout
usage_error_in_two_lines() {
	run --conf "$conf" status --jsn
	[ "$rc" = 2 ] || fail "status --jsn: exit $rc, not 2"
	[ -z "$out" ] || fail "status --jsn printed on stdout"
	[ "$err" = "jobshm: status: unrecognized option '--jsn'
Try 'jobshm status --help' for more information." ] ||
		fail "status --jsn: not the two lines of a usage error"
	run --bogus status
	[ "$rc" = 2 ] && [ "$err" = "jobshm: unrecognized option '--bogus'
Try 'jobshm --help' for more information." ] ||
		fail "--bogus: not the two lines of a usage error"
	run --conf "$conf" status extra
	[ "$rc" = 2 ] && [ "$(wc -l <<<"$err")" = 2 ] &&
		grep -qx "jobshm: status: unexpected argument 'extra'" <<<"$err" ||
		fail "status extra: not a two-line usage error"
}

# 2. each command's --help: its own usage and options, not the global help
command_help() {
	local cmd opts o global
	run --help
	global=$out
	for cmd in status sweep report check-config stage exec; do
		case $cmd in
		status) opts="--json --conf" ;;
		sweep) opts="--dry-run --quiet --json --conf" ;;
		report) opts="--json --conf" ;;
		check-config) opts="--json --keys --conf" ;;
		stage) opts="--name" ;;
		exec) opts="--node --conf" ;;
		esac
		run "$cmd" --help
		[ "$rc" = 0 ] && [ -z "$err" ] || fail "$cmd --help failed"
		[ "$out" != "$global" ] || fail "$cmd --help prints the global help"
		grep -q "^Usage: jobshm .*$cmd" <<<"$out" ||
			fail "$cmd --help has no usage line of $cmd"
		for o in $opts; do
			grep -q -- "$o" <<<"$out" || fail "$cmd --help does not name $o"
		done
	done
}

# 2. jobshm help [COMMAND]: as --help and COMMAND --help
help_command() {
	local want cmd
	for cmd in status exec; do
		run "$cmd" --help
		want=$out
		run help "$cmd"
		[ "$rc" = 0 ] && [ "$out" = "$want" ] ||
			fail "help $cmd is not $cmd --help"
	done
	run --help
	want=$out
	[ "$rc" = 0 ] && grep -q "help \[COMMAND\]" <<<"$want" ||
		fail "--help does not list the help command"
	run help
	[ "$rc" = 0 ] && [ "$out" = "$want" ] || fail "help is not --help"
	run help frobnicate
	[ "$rc" = 2 ] && grep -q "unknown command 'frobnicate'" <<<"$err" ||
		fail "help frobnicate is not a usage error"
}

# 1. options of a command after it, in any order with its operands
options_after_command() {
	run status --conf "$conf" --json
	[ "$rc" = 0 ] && [ "$out" = "[]" ] || fail "status --conf FILE --json"
	run --conf "$conf" report 77 --json
	[ "$rc" = 1 ] && [ "$out" = "[]" ] || fail "report JOBID --json"
	run sweep --quiet --conf "$conf"	# as the plugin runs it
	[ "$rc" = 0 ] && [ -z "$out$err" ] || fail "sweep --quiet --conf FILE"
	run --conf "$conf" report -- --json
	[ "$rc" = 2 ] && grep -q "invalid job id '--json'" <<<"$err" ||
		fail "report -- --json: what follows -- was parsed"
}

# 1. exec: --conf before the command, --node before or after JOBID, and
# nothing of CMD parsed; it fails later, on the job, not on an option
exec_options() {
	local who="only root may"
	[ "$(id -u)" = 0 ] && who="job 5 has no shm on node n1 of this host"
	run --conf "$conf" exec --node n1 5 -- true
	grep -q "unrecognized option" <<<"$err" && fail "--conf FILE exec --node"
	[ "$rc" = 1 ] && grep -q "$who" <<<"$err" ||
		fail "--conf FILE exec --node N JOBID: not about the job"
	run --conf "$conf" exec 5 --node n1 -- true --bogus -h
	[ "$rc" = 1 ] && grep -q "$who" <<<"$err" ||
		fail "exec JOBID --node N -- CMD: the node ignored or CMD parsed"
	run exec --conf "$conf" 5 -- ls --node n2 -h
	[ "$rc" = 1 ] && ! grep -q "node n2" <<<"$err" ||
		fail "exec JOBID -- CMD: CMD's options were parsed"
	run --conf "$conf" exec 5 --jsn -- true
	[ "$rc" = 2 ] && [ "$err" = "jobshm: exec: unrecognized option '--jsn'
Try 'jobshm exec --help' for more information." ] ||
		fail "exec --jsn: not a two-line usage error"
}

# 5. no double space in exec's message (the job is looked for as root)
no_double_space() {
	[ "$(id -u)" = 0 ] || skip no_double_space "exec looks for a job as root only"
	run exec --conf "$conf" 5 -- true
	[ "$rc" = 1 ] && grep -q "has no shm" <<<"$err" || fail "exec 5: no message"
	! grep -q "  " <<<"$err" || fail "exec 5: a double space"
}

# 4. --json: one whole document on stdout, the error on stderr, exit 1
json_on_failure() {
	run --conf "$conf" report --json 77
	[ "$rc" = 1 ] && [ "$out" = "[]" ] || fail "report --json, no record: not [] and exit 1"
	[ "$(wc -l <<<"$err")" = 1 ] && grep -q "no record of job 77" <<<"$err" ||
		fail "report --json, no record: not one message on stderr"
	run --conf "$tmp/unlistable.conf" status --json
	[ "$rc" = 1 ] && [ -n "$err" ] || fail "status --json, listing fails: no error"
	is_json "$out" || fail "status --json, listing fails: stdout is no JSON"
}

# 6. check-config --json: one object, also for a broken file
check_config_json() {
	run check-config --json "$conf"
	is_json "$out" || fail "check-config --json: no JSON"
	json_eq "$out" "(d['file'], d['error'], d['settings']['base_path'])" \
		"('$conf', None, '$tmp/base/%n')" &&
		json_eq "$out" "d['ok'] == ($rc == 0)" True &&
		json_eq "$out" "all(isinstance(w, str) for w in d['warnings'])" True ||
		fail "check-config --json: not file, ok, error, warnings, settings"
	run --conf "$tmp/broken.conf" check-config --json
	[ "$rc" = 1 ] && is_json "$out" || fail "check-config --json, broken: no JSON"
	json_eq "$out" "(d['ok'], d['settings'], 'bogus_key' in d['error'])" \
		"(False, None, True)" || fail "check-config --json, broken: not said"
	run check-config --keys --json
	[ "$rc" = 2 ] || fail "check-config --keys --json is not a usage error"
}

# base_path's node directories: none, or NODE[/JOBID] as jobshm 0.2 made
# them (no marker: listed, never swept)
base() {
	rm -rf "${tmp:?}/base" && mkdir -m 700 "$tmp/base"
	[ $# = 0 ] || { mkdir -p "$tmp/base/$1" && chmod 700 "$tmp/base/${1%%/*}"; }
}

# 6. sweep --json --dry-run: what it would do, and why; strings escaped
sweep_json_nothing() {
	base
	run --conf "$conf" sweep --json --dry-run
	[ "$rc" = 0 ] && [ "$out" = "[]" ] || fail "sweep --json --dry-run, nothing: not []"
}

sweep_json() {
	[ "$(id -u)" = 0 ] || skip sweep_json "jobshm lists only root's node directories"
	base 'n"1/1234'
	run --conf "$conf" sweep --json --dry-run
	is_json "$out" || fail "sweep --json --dry-run: no JSON"
	json_eq "$out" "[(e['job'], e['node'], e['path'], e['action'], bool(e['reason'])) for e in d]" \
		"[(1234, 'n\"1', '$tmp/base/n\"1/1234', 'left alone', True)]" ||
		fail "sweep --json --dry-run: not the job, node, path, action, reason"
	run --conf "$conf" status --json
	is_json "$out" && json_eq "$out" "d[0]['node']" "'n\"1'" ||
		fail "status --json: a node name with a quote is not escaped"
}

# 6. sweep --json: a job it cannot decide on (no Slurm to ask) is left
# alone, with the reason, and the exit status is 1
sweep_json_undecided() {
	[ ! -e /etc/slurm/slurm.conf ] || skip sweep_json_undecided "a slurm.conf: sweep would ask slurmctld"
	[ "$(id -u)" = 0 ] || skip sweep_json_undecided "a node's marker is root's"
	base n2/99
	echo n2 >"$tmp/base/n2/.jobshm-node"
	run --conf "$conf" sweep --json --dry-run
	[ "$rc" = 1 ] && is_json "$out" || fail "sweep --json, undecided: not JSON and exit 1"
	json_eq "$out" "[(e['job'], e['action'], 'slurmctld' in e['reason']) for e in d]" \
		"[(99, 'left alone', True)]" ||
		fail "sweep --json: the undecided job is not left alone, with why"
}

check usage_error_in_two_lines
check command_help
check help_command
check options_after_command
check exec_options
check no_double_space
check json_on_failure
check check_config_json
check sweep_json_nothing
check sweep_json
check sweep_json_undecided
echo "test_cli: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
