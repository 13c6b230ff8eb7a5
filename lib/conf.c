/* SPDX-License-Identifier: GPL-2.0-or-later */
/* jobshm.conf: a table of keys, one parser per kind, then cross checks. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

void
jobshm_conf_defaults(struct jobshm_conf *conf)
{
	memset(conf, 0, sizeof(*conf));
	snprintf(conf->base_path, sizeof(conf->base_path), "%s",
		 JOBSHM_DEFAULT_BASE);
	conf->default_size.none = 1;
	conf->max_size.percent = 50;
	conf->allow_opt_out = 1;
	conf->stepd_namespace = 1;
	conf->count_against_job_mem = 1;
	snprintf(conf->usage_log, sizeof(conf->usage_log), "%s",
		 JOBSHM_USAGE_LOG);
	conf->usage_log_max = 10ULL << 20;
	conf->usage_interval = 1;
}

/* Absolute, no "." or ".." component, %n only as a whole component. */
static int
check_base_path(const char *p, jobshm_err_t *err)
{
	const char *c = p, *n;
	size_t len;

	if (p[0] != '/')
		return jobshm_fail(err, "base_path '%s' must be absolute", p);
	if (strlen(p) > 200)
		return jobshm_fail(err, "base_path '%s' is longer than 200 "
				   "characters", p);
	for (; *c; c = n) {
		while (*c == '/')
			c++;
		n = strchr(c, '/');
		n = n ? n : c + strlen(c);
		len = (size_t)(n - c);
		if ((len == 1 && c[0] == '.') || (len == 2 && !strncmp(c, "..", 2)))
			return jobshm_fail(err, "base_path '%s' must not hold "
					   "'.' or '..'", p);
		if (memchr(c, '%', len) && !(len == 2 && !strncmp(c, "%n", 2)))
			return jobshm_fail(err, "base_path '%s': %%n must be a "
					   "whole path component", p);
	}
	if (strstr(p, "%n") != strrchr(p, '%'))
		return jobshm_fail(err, "base_path '%s': at most one %%n", p);
	if (strcmp(p, "/") == 0)
		return jobshm_fail(err, "base_path must not be '/'");
	return 0;
}

static int
get_size(config_setting_t *s, struct jobshm_size *out, jobshm_err_t *err)
{
	char buf[64];
	const char *str = buf;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		snprintf(buf, sizeof(buf), "%lld",
			 (long long)config_setting_get_int64(s));
		break;
	case CONFIG_TYPE_STRING:
		str = config_setting_get_string(s);
		break;
	default:
		return jobshm_fail(err, "%s must be a size (a string like "
				   "\"4G\" or \"50%%\", or MiB)",
				   config_setting_name(s));
	}
	if (jobshm_size_parse(str, out, err) < 0)
		return -1;
	return 0;
}

static int
get_bool(config_setting_t *s, int *out, jobshm_err_t *err)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return jobshm_fail(err, "%s must be true or false",
				   config_setting_name(s));
	*out = config_setting_get_bool(s);
	return 0;
}

/* nvram_paths = [ "/mnt/pmem_fsdax0", ... ]: absolute, plain paths. */
static int
get_nvram_paths(struct jobshm_conf *c, config_setting_t *s, jobshm_err_t *err)
{
	const char *p;
	int i, n = config_setting_length(s);

	if (!config_setting_is_aggregate(s) || n > JOBSHM_NVRAM_PATHS)
		return jobshm_fail(err, "nvram_paths must be a list of at most "
				   "%d absolute paths, like [ \"/mnt/pmem_fsdax0\" ]",
				   JOBSHM_NVRAM_PATHS);
	for (i = 0; i < n; i++) {
		p = config_setting_get_string_elem(s, i);
		if (!p || p[0] != '/' || strstr(p, "/..") || strstr(p, "/./") ||
		    strlen(p) >= sizeof(c->nvram_paths[0]))
			return jobshm_fail(err, "nvram_paths: '%s' is not an "
					   "absolute path without '.' or '..' "
					   "(at most %zu characters)",
					   p ? p : "(not a string)",
					   sizeof(c->nvram_paths[0]) - 1);
		snprintf(c->nvram_paths[i], sizeof(c->nvram_paths[0]), "%s", p);
	}
	c->n_nvram_paths = n;
	return 0;
}

static int
set_base_path(struct jobshm_conf *c, config_setting_t *s, jobshm_err_t *err)
{
	const char *str = config_setting_get_string(s);

	if (!str)
		return jobshm_fail(err, "base_path must be a string");
	if (check_base_path(str, err) < 0)
		return -1;
	snprintf(c->base_path, sizeof(c->base_path), "%s", str);
	return 0;
}

static int
set_default_size(struct jobshm_conf *c, config_setting_t *s, jobshm_err_t *err)
{
	return get_size(s, &c->default_size, err);
}

static int
set_max_size(struct jobshm_conf *c, config_setting_t *s, jobshm_err_t *err)
{
	return get_size(s, &c->max_size, err);
}

static int
set_allow_opt_out(struct jobshm_conf *c, config_setting_t *s, jobshm_err_t *err)
{
	return get_bool(s, &c->allow_opt_out, err);
}

static int
set_count_mem(struct jobshm_conf *c, config_setting_t *s, jobshm_err_t *err)
{
	return get_bool(s, &c->count_against_job_mem, err);
}

static int
set_stepd_namespace(struct jobshm_conf *c, config_setting_t *s,
		    jobshm_err_t *err)
{
	return get_bool(s, &c->stepd_namespace, err);
}

static int
set_debug(struct jobshm_conf *c, config_setting_t *s, jobshm_err_t *err)
{
	return get_bool(s, &c->debug, err);
}

static int
set_usage_log(struct jobshm_conf *c, config_setting_t *s, jobshm_err_t *err)
{
	const char *str = config_setting_get_string(s);

	if (!str || (str[0] && (str[0] != '/' || strstr(str, "/../") ||
				strlen(str) >= sizeof(c->usage_log))))
		return jobshm_fail(err, "usage_log must be an absolute path "
				   "(at most %zu characters), or \"\" for none",
				   sizeof(c->usage_log) - 1);
	snprintf(c->usage_log, sizeof(c->usage_log), "%s", str);
	return 0;
}

static int
set_metrics_dir(struct jobshm_conf *c, config_setting_t *s, jobshm_err_t *err)
{
	const char *str = config_setting_get_string(s);

	if (!str || (str[0] && (str[0] != '/' || strstr(str, "/../") ||
				strlen(str) >= sizeof(c->metrics_dir))))
		return jobshm_fail(err, "metrics_dir must be an absolute path "
				   "(at most %zu characters), or \"\" for none",
				   sizeof(c->metrics_dir) - 1);
	snprintf(c->metrics_dir, sizeof(c->metrics_dir), "%s", str);
	return 0;
}

static int
set_usage_log_max(struct jobshm_conf *c, config_setting_t *s,
		  jobshm_err_t *err)
{
	struct jobshm_size sz;

	if (get_size(s, &sz, err) < 0)
		return -1;
	if (sz.percent)
		return jobshm_fail(err, "usage_log_max must be a size like "
				   "\"10M\", or 0 for no rotation");
	c->usage_log_max = sz.bytes;
	return 0;
}

static int
set_usage_interval(struct jobshm_conf *c, config_setting_t *s,
		   jobshm_err_t *err)
{
	long long v;

	if ((config_setting_type(s) != CONFIG_TYPE_INT &&
	     config_setting_type(s) != CONFIG_TYPE_INT64) ||
	    (v = config_setting_get_int64(s)) < 0 || v > 3600)
		return jobshm_fail(err, "usage_interval must be a whole number "
				   "of seconds, 0-3600");
	c->usage_interval = (unsigned)v;
	return 0;
}

static int
set_default_mpol(struct jobshm_conf *c, config_setting_t *s, jobshm_err_t *err)
{
	const char *str = config_setting_get_string(s);

	if (!str)
		return jobshm_fail(err, "default_mpol must be a string");
	return jobshm_mpol_parse(str, &c->default_mpol, err);
}

static int
set_topology_xml(struct jobshm_conf *c, config_setting_t *s, jobshm_err_t *err)
{
	const char *str = config_setting_get_string(s);

	if (!str || str[0] != '/' || strlen(str) >= sizeof(c->topology_xml))
		return jobshm_fail(err, "topology_xml must be an absolute path");
	snprintf(c->topology_xml, sizeof(c->topology_xml), "%s", str);
	return 0;
}

static int
set_huge(struct jobshm_conf *c, config_setting_t *s, jobshm_err_t *err)
{
	static const char *ok[] = { "auto", "never", "always", "within_size",
				    "advise", NULL };
	const char *str = config_setting_get_string(s);
	int i;

	for (i = 0; ok[i] && (!str || strcmp(str, ok[i])); i++)
		;
	if (!ok[i])
		return jobshm_fail(err, "huge must be one of auto, never, "
				   "always, within_size, advise");
	snprintf(c->huge, sizeof(c->huge), "%s", str);
	return 0;
}

/*
 * The keys of jobshm.conf: the one reference.  The loader, the
 * unknown-key message, jobshm.conf(5), the README's table and the checks
 * of configs/jobshm.conf all come from here (jobshm check-config --keys).
 */
static const struct key {
	struct jobshm_conf_key doc;
	int (*set)(struct jobshm_conf *, config_setting_t *, jobshm_err_t *);
} keys[] = {
	{ { "base_path", "string", "\"/run/jobshm/%n\"",
	    "Where per-job mounts live (<base>/<jobid>). Absolute, no . or ..; "
	    "%n (a whole path component) is the Slurm node name, so several "
	    "slurmd on one host never collide. Every component must be a "
	    "directory of root's that only root can write to (an existing one "
	    "under a sticky directory such as /tmp excepted); missing ones "
	    "are created, the last root-only (0700), but never inside a "
	    "directory others can write to: keep it in a root-only place." }, set_base_path },
	{ { "default_size", "size", "0",
	    "Size for jobs without --shm; 0 or \"none\": they keep the node's "
	    "/dev/shm. \"N%\" is N% of the job's memory on the node." },
	  set_default_size },
	{ { "max_size", "size", "\"50%\"",
	    "The largest shm of one job on a node (from --shm, --nvram-options"
	    "=2LM, a default or a later step's growth); \"N%\" is N% of the "
	    "node's RAM. Not 0." }, set_max_size },
	{ { "allow_opt_out", "bool", "true",
	    "May users give --shm=0 when default_size is not 0?" },
	  set_allow_opt_out },
	{ { "count_against_job_mem", "bool", "true",
	    "Refuse a shm larger than the job's memory on the node (tmpfs pages "
	    "are charged to the job's memory cgroup)." }, set_count_mem },
	{ { "default_mpol", "string", "\"default\"",
	    "NUMA policy for jobs without --shm-mpol: default, local, "
	    "interleave (for data every worker reads, on multi-socket nodes) "
	    "or bind:LIST. Anything but default makes each step ask hwloc." },
	  set_default_mpol },
	{ { "huge", "string", "\"auto\"",
	    "tmpfs huge= for job shm: auto, never, always, within_size, "
	    "advise. auto mounts huge=within_size wherever the kernel offers "
	    "shmem huge pages, and adds nothing elsewhere." }, set_huge },
	{ { "nvram_paths", "list of paths", "[]",
	    "fsdax mounts of persistent memory (at most 4) for "
	    "--nvram-options=1LM on nodes whose PMem is not NUMA memory; each "
	    "must be a mounted filesystem. jobshm keeps its per-job "
	    "directories and reservations in <path>/.jobshm (root-only) and, "
	    "where the filesystem enforces quotas (XFS uquota,prjquota), caps "
	    "each job with a project quota and each user with a user quota "
	    "of the sum of their reservations; with project quotas only, 1LM "
	    "jobs are refused." }, get_nvram_paths },
	{ { "topology_xml", "path", "unset",
	    "An hwloc XML file (lstopo --of xml) read instead of probing the "
	    "node." }, set_topology_xml },
	{ { "stepd_namespace", "bool", "true",
	    "slurmstepd's thread that forks the tasks joins the job's mount "
	    "namespace on the node, so every task starts in it and none pays "
	    "for a namespace of its own. Off: each task joins (or, beside a "
	    "job container, enters) by itself. jobshm turns it off by itself "
	    "when slurm.conf names a JobContainerType or NamespaceType (their "
	    "tasks must start in the host's namespace)." },
	  set_stepd_namespace },
	{ { "usage_log", "path", "\"" JOBSHM_USAGE_LOG "\"",
	    "Where each job's use of its shm on the node is logged at the job's "
	    "end, one JSON object per line (job, node, uid, kind, size, peak, "
	    "final, full, start, end, name, and left_step, left_files, "
	    "left_bytes: what the last srun step that left files left), for "
	    "site collectors, jobshm report and jobshm suggest. "
	    "Nothing is logged where its directory does not exist; \"\" turns "
	    "it off." }, set_usage_log },
	{ { "usage_log_max", "size", "\"10M\"",
	    "Past this size the usage log becomes <usage_log>.1 (one old file "
	    "is kept) and a new one starts; 0: never rotated." },
	  set_usage_log_max },
	{ { "metrics_dir", "path", "\"\"",
	    "A directory of root's (not writable by others) that Prometheus's "
	    "node exporter reads with --collector.textfile.directory (Debian: "
	    "/var/lib/prometheus/node-exporter). While a --shm job runs on the "
	    "node its steps keep jobshm-job-<jobid>-<node>.prom there (size, "
	    "used and peak bytes, times it became full; written atomically, at "
	    "most once per usage_interval), gone at the job's end, and "
	    "jobshm.prom the node's totals. \"\": off." }, set_metrics_dir },
	{ { "usage_interval", "int", "1",
	    "Seconds between samples of each job's shm by the slurmstepd of "
	    "its steps (fstatvfs, written only when the peak or fullness "
	    "changes); after a file is made or grown at the top of /dev/shm "
	    "(inotify), every 1 ms for 250 ms, in at most a quarter of "
	    "fs.inotify.max_user_instances (and 32) steps of the node at "
	    "once; 0: sampled only when a task exits and at the epilog." },
	  set_usage_interval },
	{ { "debug", "bool", "false",
	    "Say what was decided and why (admission, placement, mount "
	    "options, cleanup, sweep) in slurmd's log and on the jobshm "
	    "command's stderr." }, set_debug },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

const struct jobshm_conf_key *
jobshm_conf_key(size_t i)
{
	return i < NKEYS ? &keys[i].doc : NULL;
}

static int
get_key(struct jobshm_conf *c, config_setting_t *s, jobshm_err_t *err)
{
	const char *name = config_setting_name(s);
	char known[512] = "";
	size_t i, n = 0;

	for (i = 0; i < NKEYS; i++)
		if (!strcmp(name, keys[i].doc.name))
			return keys[i].set(c, s, err);
	for (i = 0; i < NKEYS; i++)
		n += (size_t)snprintf(known + n, n < sizeof(known) ?
				      sizeof(known) - n : 0, "%s%s",
				      i ? ", " : "", keys[i].doc.name);
	return jobshm_fail(err, "unknown key '%s' (known: %s)", name, known);
}

static int
cross_check(const struct jobshm_conf *c, jobshm_err_t *err)
{
	if (c->max_size.none)
		return jobshm_fail(err, "max_size must not be 0 or none; "
				   "to turn jobshm off, unload the plugin");
	if (!c->default_size.none && !c->default_size.percent &&
	    c->default_size.bytes > jobshm_conf_max_bytes(c))
		return jobshm_fail(err, "default_size is larger than max_size");
	return 0;
}

/* The file's text, NUL-terminated, at most 1 MiB; or NULL and why. */
#define CONF_MAX (1 << 20)
static char *
read_fd(int fd, const char *path, size_t *len, jobshm_err_t *err)
{
	char *buf = NULL, *nb;
	size_t cap = 0, n = 0;
	ssize_t r = 1;

	while (r != 0) {
		if (n + 1 >= cap) {
			cap = cap ? 2 * cap : 4096;
			if (cap > CONF_MAX || !(nb = realloc(buf, cap)))
				break;
			buf = nb;
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno != EINTR)
			break;
		n += r > 0 ? (size_t)r : 0;
	}
	if (r == 0) {
		buf[n] = '\0';
		*len = n;
		return buf;
	}
	if (cap > CONF_MAX)
		jobshm_fail(err, "%s is too large for a jobshm.conf file "
			    "(1 MiB at most)", path);
	else
		jobshm_fail(err, "%s: cannot read: %m", path);
	free(buf);
	return NULL;
}

static char *
read_text(const char *path, size_t *len, jobshm_err_t *err)
{
	struct stat st;
	char *text = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0 || fstat(fd, &st) < 0)
		jobshm_fail(err, "%s: cannot read: %m", path);
	else if (S_ISDIR(st.st_mode))
		jobshm_fail_code(err, EISDIR, "%s is a directory, not a "
				 "jobshm.conf file", path);
	else
		text = read_fd(fd, path, len, err);
	if (fd >= 0)
		close(fd);
	if (text && memchr(text, '\0', *len)) {
		free(text);
		jobshm_fail(err, "%s holds a NUL byte: not a jobshm.conf "
			    "file", path);
		return NULL;
	}
	return text;
}

/*
 * Just enough of libconfig's lexer to find its numbers: strings,
 * comments and names are skipped, lines counted, the last name kept.
 */
struct lex {
	const char *p;
	int line;
	const char *name;
	int name_len;
};

static const char *
lex_skip(struct lex *l, const char *p)
{
	const char *q = p;

	if (*p == '#' || !strncmp(p, "//", 2))
		return p + strcspn(p, "\n");
	if (!strncmp(p, "/*", 2)) {
		q = strstr(p + 2, "*/");
		q = q ? q + 2 : p + strlen(p);
	} else if (*p == '"') {
		for (q = p + 1; *q && *q != '"'; q++)
			q += *q == '\\' && q[1];
		q += *q == '"';
	} else if (isalpha((unsigned char)*p) || *p == '*') {
		q = p + 1 + strspn(p + 1, "-_*abcdefghijklmnopqrstuvwxyz"
				   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
		l->name = p;
		l->name_len = (int)(q - p);
	}
	for (; p < q; p++)
		l->line += *p == '\n';
	return q;
}

static int
starts_number(const char *p)
{
	p += *p == '+' || *p == '-';
	p += *p == '.';
	return isdigit((unsigned char)*p);
}

/* A number and what sticks to it: "12", "0x1f", "1.5e-3", "4G", "50%". */
static size_t
number_len(const char *p)
{
	size_t n = *p == '+' || *p == '-';

	for (; p[n]; n++)
		if (!isalnum((unsigned char)p[n]) && !strchr("_.%", p[n]) &&
		    !(strchr("+-", p[n]) && strchr("eE", p[n - 1])))
			break;
	return n;
}

static const char *
lex_number(struct lex *l, size_t *len)
{
	const char *p, *q;

	for (p = l->p; *p; p = q) {
		if (starts_number(p)) {
			*len = number_len(p);
			l->p = p + *len;
			return p;
		}
		q = lex_skip(l, p);
		if (q == p)
			l->line += *q++ == '\n';
	}
	l->p = p;
	return NULL;
}

/*
 * A plain integer that libconfig 1.5 would cut to 32 bits (it reads one
 * without an L as int, silently): 1; one it reads as it is, 0; one that
 * no 64-bit integer holds, -1.
 */
static int
int_too_wide(const char *t, size_t len)
{
	int hex = len > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X');
	size_t s = hex ? 2 : (size_t)(*t == '+' || *t == '-');
	char buf[72];
	unsigned long long u;
	long long v;

	if (s >= len || strspn(t + s, hex ? "0123456789abcdefABCDEF" :
			       "0123456789") != len - s)
		return 0;	/* not a plain integer: libconfig's to read */
	if (len >= sizeof(buf))
		return -1;
	memcpy(buf, t, len);
	buf[len] = '\0';
	errno = 0;
	if (hex) {
		u = strtoull(buf, NULL, 16);
		return errno || u > LLONG_MAX ? -1 : u > INT_MAX;
	}
	v = strtoll(buf, NULL, 10);
	return errno ? -1 : v < INT_MIN || v > INT_MAX;
}

/* The text with an L after every integer too wide for int: read as 64 bits. */
static char *
widen(const char *path, const char *text, size_t len, jobshm_err_t *err)
{
	struct lex l = { .p = text, .line = 1 };
	char *out = malloc(2 * len + 1), *o = out;
	const char *t, *from = text;
	size_t n;
	int w;

	if (!out) {
		jobshm_fail(err, "%s: %m", path);
		return NULL;
	}
	while ((t = lex_number(&l, &n))) {
		if ((w = int_too_wide(t, n)) < 0) {
			free(out);
			jobshm_fail(err, "%s:%d: %.*s does not fit in a 64-bit "
				    "integer", path, l.line, (int)n, t);
			return NULL;
		}
		memcpy(o, from, (size_t)(t + n - from));
		o += t + n - from;
		from = t + n;
		if (w)
			*o++ = 'L';
	}
	strcpy(o, from);
	return out;
}

/* Digits and a unit, "4G", "512MB", "50%": a size that lost its quotes. */
static int
size_like(const char *t, size_t n)
{
	size_t d = strspn(t, "0123456789"), r = n - d;
	const char *u = t + d;

	if (d == 0 || d == n)
		return 0;
	if (r == 1 && *u == '%')
		return 1;
	if (!strchr("KMGTPkmgtp", *u))
		return 0;
	return r == 1 || (r == 2 && (u[1] == 'B' || u[1] == 'b'));
}

/* " (sizes are strings: write max_size = \"4G\";)" for such a size. */
static void
size_hint(const char *text, int line, char *buf, size_t len)
{
	struct lex l = { .p = text, .line = 1 };
	const char *t;
	size_t n;

	buf[0] = '\0';
	while ((t = lex_number(&l, &n)) && l.line <= line) {
		if (l.line < line || !size_like(t, n))
			continue;
		if (l.name)
			snprintf(buf, len, " (sizes are strings: write "
				 "%.*s = \"%.*s\";)", l.name_len > 64 ? 64 :
				 l.name_len, l.name, (int)n, t);
		else
			snprintf(buf, len, " (sizes are strings: write "
				 "\"%.*s\")", (int)n, t);
		return;
	}
}

static int
parse(config_t *cfg, const char *path, const char *text, const char *wide,
      jobshm_err_t *err)
{
	const char *file;
	char hint[160] = "";

	if (config_read_string(cfg, wide))
		return 0;
	if ((file = config_error_file(cfg)))	/* in an @include */
		return jobshm_fail(err, "%s: %s:%d: %s", path, file,
				   config_error_line(cfg),
				   config_error_text(cfg));
	if (config_error_type(cfg) == CONFIG_ERR_PARSE)
		size_hint(text, config_error_line(cfg), hint, sizeof(hint));
	return jobshm_fail(err, "%s:%d: %s%s", path, config_error_line(cfg),
			   config_error_text(cfg), hint);
}

/* An @include'd file, which libconfig reads itself: no integer it cut. */
static int
check_included(const char *path, const char *file, jobshm_err_t *err)
{
	struct lex l = { .line = 1 };
	jobshm_err_t e;
	const char *t;
	size_t len, n;
	char *text;
	int rc = 0;

	if (!(text = read_text(file, &len, &e)))
		return jobshm_fail(err, "%s: %s", path, e.msg);
	l.p = text;
	while (rc == 0 && (t = lex_number(&l, &n)))
		if (int_too_wide(t, n))
			rc = jobshm_fail(err, "%s: %s:%d: %.*s is wider than "
					 "32 bits, which libconfig cuts in an "
					 "@include'd file: add an L, or write "
					 "a size as a string like \"4G\"",
					 path, file, l.line, (int)n, t);
	free(text);
	return rc;
}

static int
apply(struct jobshm_conf *conf, config_t *cfg, const char *path,
      jobshm_err_t *err)
{
	config_setting_t *root = config_root_setting(cfg), *s;
	const char *file, *checked = NULL;
	jobshm_err_t e;
	int i;

	for (i = 0; (s = config_setting_get_elem(root, i)); i++) {
		file = config_setting_source_file(s);
		if (file && file != checked &&
		    check_included(path, (checked = file), err) < 0)
			return -1;
		if (get_key(conf, s, &e) == 0)
			continue;
		if (file)	/* an @include's */
			return jobshm_fail(err, "%s: %s:%d: %s", path, file,
					   config_setting_source_line(s),
					   e.msg);
		return jobshm_fail(err, "%s:%d: %s", path,
				   config_setting_source_line(s), e.msg);
	}
	if (cross_check(conf, &e) < 0)
		return jobshm_fail(err, "%s: %s", path, e.msg);
	return 0;
}

/*
 * libconfig reads our copy of the file, in which every integer too wide
 * for its int has an L: it would cut it silently otherwise.
 */
int
jobshm_conf_load(struct jobshm_conf *conf, const char *path,
		 jobshm_err_t *err)
{
	config_t cfg;
	char *text, *wide;
	size_t len;
	int rc = -1;

	if (!(text = read_text(path, &len, err)))
		return -1;
	wide = widen(path, text, len, err);
	config_init(&cfg);
	if (wide && parse(&cfg, path, text, wide, err) == 0 &&
	    apply(conf, &cfg, path, err) == 0)
		rc = 0;
	config_destroy(&cfg);
	free(wide);
	free(text);
	return rc;
}

int
jobshm_conf_base(const struct jobshm_conf *conf, const char *node, char *buf,
		 size_t len, jobshm_err_t *err)
{
	const char *p = strstr(conf->base_path, "%n");
	int n;

	if (!p) {
		n = snprintf(buf, len, "%s", conf->base_path);
	} else {
		if (!node || !*node || strchr(node, '/') || node[0] == '.')
			return jobshm_fail(err, "bad node name '%s' for "
					   "base_path %s", node ? node : "",
					   conf->base_path);
		n = snprintf(buf, len, "%.*s%s%s", (int)(p - conf->base_path),
			     conf->base_path, node, p + 2);
	}
	if (n < 0 || (size_t)n >= len)
		return jobshm_fail(err, "base path too long");
	return 0;
}

int
jobshm_conf_top(const struct jobshm_conf *conf, char *buf, size_t len)
{
	const char *p = strstr(conf->base_path, "%n");
	int n = snprintf(buf, len, "%.*s", (int)(p ? p - conf->base_path - 1 :
						  (long)strlen(conf->base_path)),
			 conf->base_path);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

uint64_t
jobshm_conf_max_bytes(const struct jobshm_conf *conf)
{
	uint64_t ram = (uint64_t)sysconf(_SC_PHYS_PAGES) *
		       (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t bytes = 0;

	if (jobshm_size_resolve(&conf->max_size, ram, &bytes, NULL) < 0)
		return 0;
	return bytes;
}

/*
 * The tmpfs huge= value for job shm, or NULL for none.  "auto" (the
 * default) asks for 2 MiB pages in files that fill them (within_size)
 * wherever the kernel has shmem huge pages and the admin has not denied
 * them; the rest passes through.
 */
const char *
jobshm_conf_huge(const struct jobshm_conf *conf)
{
	char buf[128] = "";
	FILE *f;

	if (conf->huge[0] && strcmp(conf->huge, "auto"))
		return conf->huge;
	f = fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "re");
	if (!f)
		return NULL;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	if (!strstr(buf, "within_size") || strstr(buf, "[deny]"))
		return NULL;
	return "within_size";
}
