/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * jobshm [--conf FILE] suggest [--user U] [--name JOBNAME] [--since DAYS]
 *        [--json] [--svg FILE] [LOG...]
 *
 * Sizing advice from the usage log (this node's, or logs gathered from
 * several nodes): per user and job name, what was asked, the peak used,
 * how often the shm became full, and the --shm to ask for next time.
 * A record is one job's shm on one node (--shm is per node), so a job
 * on four nodes gives four records and counts as one run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common.h"
#include "jobshm.h"
#include "suggest.h"

static const char *prog = "jobshm";

#define MiB (UINT64_C(1) << 20)
#define HEADROOM 1.25	/* the p95 peak times this, then rounded up */
#define OVERSIZED 4	/* asked this many times the peak or more */

struct rec {
	uint32_t jobid;
	uint64_t size, peak;
	unsigned full;
};

struct group {
	uid_t uid;
	char name[64];
	struct rec *r;
	size_t n, cap;
};

struct opts {
	const char *conf, *svg, *user_arg, *name;
	int conf_given, json;
	uid_t uid;
	int64_t since;		/* records that ended before: left out */
};

static struct {
	struct group *g;
	size_t n, cap;
	size_t records, bad;
} db;

static void
suggest_usage(void)
{
	printf("Usage: %s [--conf FILE] suggest [--user U] [--name JOBNAME] "
	       "[--since DAYS] [--json]\n       [--svg FILE] [LOG...]\n"
	       "Sizing advice from usage_log (this node's, or the LOG files "
	       "given, gathered\nfrom several nodes): per user and job name, "
	       "the runs, what they asked\n(median), the peak used (p50, p95, "
	       "max), how often the shm became full,\nand the --shm to ask for "
	       "next time (the p95 peak plus 25%%, rounded up).\n\n"
	       "Options:\n"
	       "  -u, --user U          only user U's jobs (a name or a uid)\n"
	       "  -n, --name JOBNAME    only jobs named JOBNAME\n"
	       "  -s, --since DAYS      only jobs that ended in the last DAYS "
	       "days\n"
	       "  -j, --json            one JSON array, an object per user and "
	       "job name\n"
	       "      --svg FILE        draw asked against peak for each job "
	       "(log scales)\n"
	       "                        into FILE, for a browser\n"
	       "  -c, --conf FILE       configuration file (default %s,\n"
	       "                        or $JOBSHM_CONF)\n"
	       "  -h, --help            this text\n", prog, JOBSHM_CONF);
}

static int __attribute__((format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = jobshm_cli_usage_error("suggest", fmt, ap);
	va_end(ap);
	return rc;
}

static int
parse_user(const char *s, uid_t *uid)
{
	struct passwd *pw = getpwnam(s);
	char *end;
	unsigned long v;

	if (pw) {
		*uid = pw->pw_uid;
		return 0;
	}
	errno = 0;
	v = strtoul(s, &end, 10);
	if (!*s || *end || errno || v >= (uid_t)-1 || *s == '-')
		return -1;
	*uid = (uid_t)v;
	return 0;
}

static int
parse_days(const char *s, int64_t *since)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < 1 || v > 100000)
		return -1;
	*since = (int64_t)time(NULL) - (int64_t)v * 86400;
	return 0;
}

static const struct option longopts[] = {
	{ "user", required_argument, NULL, 'u' },
	{ "name", required_argument, NULL, 'n' },
	{ "since", required_argument, NULL, 's' },
	{ "json", no_argument, NULL, 'j' },
	{ "svg", required_argument, NULL, 'S' },
	{ "conf", required_argument, NULL, 'c' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

/* The options; the first operand's index, or -(exit code) on error. */
static int
parse(int ac, char **av, struct opts *o)
{
	char label[] = "jobshm: suggest";
	int c;

	av[0] = label;
	optind = 0;
	while ((c = getopt_long(ac, av, "u:n:s:jc:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'u':
			o->user_arg = optarg;
			if (parse_user(optarg, &o->uid) < 0)
				return -usage_error("unknown user '%s': "
					"expected a user name or a uid", optarg);
			break;
		case 'n': o->name = optarg; break;
		case 's':
			if (parse_days(optarg, &o->since) < 0)
				return -usage_error("invalid --since '%s': "
					"expected a whole number of days from 1, "
					"like 30", optarg);
			break;
		case 'j': o->json = 1; break;
		case 'S': o->svg = optarg; break;
		case 'c': o->conf = optarg; o->conf_given = 1; break;
		case 'h': suggest_usage(); exit(0);
		default:
			return -jobshm_cli_try_help("suggest");
		}
	}
	return optind;
}

static struct group *
group_of(uid_t uid, const char *name)
{
	struct group *g;

	for (size_t i = 0; i < db.n; i++)
		if (db.g[i].uid == uid && !strcmp(db.g[i].name, name))
			return &db.g[i];
	if (db.n == db.cap) {
		size_t cap = db.cap ? 2 * db.cap : 16;
		void *p = realloc(db.g, cap * sizeof(*db.g));

		if (!p)
			return NULL;
		db.g = p;
		db.cap = cap;
	}
	g = &db.g[db.n++];
	memset(g, 0, sizeof(*g));
	g->uid = uid;
	snprintf(g->name, sizeof(g->name), "%s", name);
	return g;
}

static int
add(const struct jobshm_usage *u, void *arg)
{
	const struct opts *o = arg;
	struct group *g;

	if ((o->user_arg && u->uid != o->uid) ||
	    (o->name && strcmp(u->name, o->name)) ||
	    (o->since && u->end < o->since))
		return 0;
	if (!(g = group_of(u->uid, u->name)))
		return -1;
	if (g->n == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 8;
		void *p = realloc(g->r, cap * sizeof(*g->r));

		if (!p)
			return -1;
		g->r = p;
		g->cap = cap;
	}
	g->r[g->n++] = (struct rec){ u->jobid, u->size, u->peak, u->full };
	db.records++;
	return 0;
}

static void
bad_line(const char *path, unsigned line, void *arg)
{
	(void)arg;
	db.bad++;
	fprintf(stderr, "%s: suggest: %s:%u: not a usage record (skipped)\n",
		prog, path, line);
}

/* ---- the figures of a group ------------------------------------------ */

struct figures {
	size_t runs;		/* distinct jobs */
	uint64_t asked, p50, p95, max, next;
	size_t full, oversized;	/* records */
};

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest value with at least p of them at or below. */
static uint64_t
rank(const uint64_t *v, size_t n, double p)
{
	size_t k = (size_t)ceil(p * (double)n);

	return v[k ? k - 1 : 0];
}

/* Up to the next of 1, 1.5, 2, 3, 4, 6, 8 ... MiB (at least 1 MiB). */
static uint64_t
round_up(double bytes)
{
	uint64_t m = 1;

	for (;;) {
		if ((double)(m * MiB) >= bytes)
			return m * MiB;
		if (m >= 2 && (double)(m * 3 / 2 * MiB) >= bytes)
			return m * 3 / 2 * MiB;
		m *= 2;
	}
}

static int
figures_of(const struct group *g, struct figures *f)
{
	uint64_t *v = malloc(g->n * sizeof(*v));
	uint32_t *ids = malloc(g->n * sizeof(*ids));
	size_t i;

	if (!v || !ids) {
		free(v);
		free(ids);
		return -1;
	}
	memset(f, 0, sizeof(*f));
	for (i = 0; i < g->n; i++) {
		v[i] = g->r[i].size;
		ids[i] = g->r[i].jobid;
		f->full += g->r[i].full > 0;
		f->oversized += g->r[i].size >= OVERSIZED * g->r[i].peak;
	}
	qsort(v, g->n, sizeof(*v), cmp_u64);
	f->asked = rank(v, g->n, 0.5);
	qsort(ids, g->n, sizeof(*ids), cmp_u32);
	for (i = 0; i < g->n; i++)
		f->runs += !i || ids[i] != ids[i - 1];
	for (i = 0; i < g->n; i++)
		v[i] = g->r[i].peak;
	qsort(v, g->n, sizeof(*v), cmp_u64);
	f->p50 = rank(v, g->n, 0.5);
	f->p95 = rank(v, g->n, 0.95);
	f->max = v[g->n - 1];
	/* a job that filled used what it had: its need is not known, and
	 * twice what it asked is the least to try */
	f->next = round_up((double)f->p95 * HEADROOM);
	for (i = 0; i < g->n; i++)
		if (g->r[i].full && f->next < 2 * g->r[i].size)
			f->next = round_up(2.0 * (double)g->r[i].size);
	free(v);
	free(ids);
	return 0;
}

/* Slurm's size syntax: whole G where it is, else M. */
static const char *
slurm_size(uint64_t b, char *buf, size_t len)
{
	if (b % (1024 * MiB) == 0)
		snprintf(buf, len, "%" PRIu64 "G", b / (1024 * MiB));
	else
		snprintf(buf, len, "%" PRIu64 "M", b / MiB);
	return buf;
}

static const char *
note(const struct figures *f, size_t n_rec, uint64_t max_size, char *buf,
     size_t len)
{
	char a[32];
	int n = 0;

	buf[0] = '\0';
	if (f->full)
		n += snprintf(buf + n, len - (size_t)n, "filled up in %zu of "
			      "%zu; ", f->full, n_rec);
	if (f->oversized)
		n += snprintf(buf + n, len - (size_t)n, "asked %dx or more "
			      "what it used in %zu of %zu; ", OVERSIZED,
			      f->oversized, n_rec);
	if (max_size && f->next > max_size)
		n += snprintf(buf + n, len - (size_t)n, "above max_size %s; ",
			      jobshm_size_format(max_size, a, sizeof(a)));
	if (n >= 2 && (size_t)n <= len)
		buf[n - 2] = '\0';
	return buf;
}

static int
cmp_group(const void *a, const void *b)
{
	const struct group *x = a, *y = b;

	return x->uid != y->uid ? (x->uid < y->uid ? -1 : 1) :
	       strcmp(x->name, y->name);
}

static void
print_table(uint64_t max_size)
{
	char u[64], s[5][32], why[256], shm[48];
	struct figures f;

	printf("%-10s %-16s %5s %7s %7s %7s %7s %5s  %-12s %s\n", "USER",
	       "NAME", "RUNS", "ASKED", "PEAK50", "PEAK95", "MAX", "FULL",
	       "SUGGEST", "NOTE");
	for (size_t i = 0; i < db.n; i++) {
		if (figures_of(&db.g[i], &f) < 0)
			continue;
		snprintf(shm, sizeof(shm), "--shm=%s",
			 slurm_size(f.next, s[4], sizeof(s[4])));
		printf("%-10s %-16s %5zu %7s %7s %7s %7s %5zu  %-12s %s\n",
		       jobshm_cli_user(db.g[i].uid, u, sizeof(u)),
		       db.g[i].name[0] ? db.g[i].name : "-", f.runs,
		       jobshm_size_format(f.asked, s[0], sizeof(s[0])),
		       jobshm_size_format(f.p50, s[1], sizeof(s[1])),
		       jobshm_size_format(f.p95, s[2], sizeof(s[2])),
		       jobshm_size_format(f.max, s[3], sizeof(s[3])), f.full, shm,
		       note(&f, db.g[i].n, max_size, why, sizeof(why)));
	}
}

static json_object *
group_json(const struct group *g, const struct figures *f, uint64_t max_size)
{
	json_object *o = json_object_new_object(), *jobs;
	char u[64], s[32], why[256];

	json_object_object_add(o, "user", json_object_new_string(
			       jobshm_cli_user(g->uid, u, sizeof(u))));
	json_object_object_add(o, "uid", json_object_new_int64(g->uid));
	json_object_object_add(o, "name", json_object_new_string(g->name));
	json_object_object_add(o, "runs", json_object_new_int64((int64_t)f->runs));
	json_object_object_add(o, "records", json_object_new_int64((int64_t)g->n));
	json_object_object_add(o, "asked_median", json_object_new_uint64(f->asked));
	json_object_object_add(o, "peak_p50", json_object_new_uint64(f->p50));
	json_object_object_add(o, "peak_p95", json_object_new_uint64(f->p95));
	json_object_object_add(o, "peak_max", json_object_new_uint64(f->max));
	json_object_object_add(o, "full", json_object_new_int64((int64_t)f->full));
	json_object_object_add(o, "oversized",
			       json_object_new_int64((int64_t)f->oversized));
	json_object_object_add(o, "suggest", json_object_new_string(
			       slurm_size(f->next, s, sizeof(s))));
	json_object_object_add(o, "suggest_bytes", json_object_new_uint64(f->next));
	json_object_object_add(o, "note", json_object_new_string(
			       note(f, g->n, max_size, why, sizeof(why))));
	jobs = json_object_new_array();
	for (size_t i = 0; i < g->n; i++)
		json_object_array_add(jobs, json_object_new_int64(g->r[i].jobid));
	json_object_object_add(o, "jobs", jobs);
	return o;
}

static void
print_json(uint64_t max_size)
{
	json_object *a = json_object_new_array();
	struct figures f;

	for (size_t i = 0; i < db.n; i++)
		if (figures_of(&db.g[i], &f) == 0)
			json_object_array_add(a, group_json(&db.g[i], &f,
							    max_size));
	puts(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PRETTY |
					    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(a);
}

/* ---- the picture ------------------------------------------------------ */

#define W 720
#define H 560
#define L 80	/* plot area: left, top, right, bottom margins */
#define T 50
#define R 160
#define B 60

struct axis {
	double lo, hi;	/* log2 of bytes at the plot's edges */
};

static double
lg(uint64_t b)
{
	return log2(b ? (double)b : 1.0);
}

static double
px(const struct axis *a, uint64_t b)
{
	return L + (lg(b) - a->lo) / (a->hi - a->lo) * (W - L - R);
}

static double
py(const struct axis *a, uint64_t b)
{
	return H - B - (lg(b) - a->lo) / (a->hi - a->lo) * (H - T - B);
}

/* Both axes alike (the diagonal at 45 degrees): whole powers of 4 from
 * below the least value to above the greatest, 1 MiB at least. */
static void
axis_of(struct axis *a)
{
	double lo = 60, hi = 0;

	for (size_t i = 0; i < db.n; i++)
		for (size_t j = 0; j < db.g[i].n; j++) {
			const struct rec *r = &db.g[i].r[j];
			uint64_t least = r->peak < MiB ? MiB : r->peak;

			lo = fmin(lo, fmin(lg(least), lg(r->size)));
			hi = fmax(hi, fmax(lg(r->peak), lg(r->size)));
		}
	/* half a power of 2 clear of the edges */
	a->lo = floor((fmin(lo, hi) - 0.5) / 2) * 2;
	a->hi = ceil((hi + 0.5) / 2) * 2;
	if (a->hi <= a->lo)
		a->hi = a->lo + 2;
}

static void
svg_axes(FILE *f, const struct axis *a)
{
	char s[32];

	fprintf(f, "<rect x='%d' y='%d' width='%d' height='%d' fill='none' "
		"stroke='#444'/>\n", L, T, W - L - R, H - T - B);
	for (double e = a->lo; e <= a->hi + 1e-9; e += 2) {
		uint64_t b = (uint64_t)ldexp(1.0, (int)e);

		jobshm_size_format(b, s, sizeof(s));
		fprintf(f, "<text x='%.1f' y='%d' text-anchor='middle'>%s</text>"
			"\n<text x='%d' y='%.1f' text-anchor='end'>%s</text>\n",
			px(a, b), H - B + 20, s, L - 8, py(a, b) + 4, s);
		fprintf(f, "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' "
			"stroke='#ddd'/><line x1='%d' y1='%.1f' x2='%d' "
			"y2='%.1f' stroke='#ddd'/>\n", px(a, b), T, px(a, b),
			H - B, L, py(a, b), W - R, py(a, b));
	}
	fprintf(f, "<text x='%d' y='%d' text-anchor='middle'>asked (--shm), "
		"per node</text>\n<text transform='translate(20 %d) "
		"rotate(-90)' text-anchor='middle'>peak used</text>\n",
		L + (W - L - R) / 2, H - 15, T + (H - T - B) / 2);
}

/* The diagonal (used all it asked) and asked = 4 x used. */
static void
svg_guides(FILE *f, const struct axis *a)
{
	uint64_t lo = (uint64_t)ldexp(1.0, (int)a->lo),
		 hi = (uint64_t)ldexp(1.0, (int)a->hi);

	fprintf(f, "<line class='diagonal' x1='%.1f' y1='%.1f' x2='%.1f' "
		"y2='%.1f' stroke='#888'/>\n", px(a, lo), py(a, lo), px(a, hi),
		py(a, hi));
	fprintf(f, "<line class='oversized' x1='%.1f' y1='%.1f' x2='%.1f' "
		"y2='%.1f' stroke='#888' stroke-dasharray='4 4'/>\n",
		px(a, lo * OVERSIZED), py(a, lo), px(a, hi),
		py(a, hi / OVERSIZED));
	fprintf(f, "<text x='%d' y='%d'>— used all it asked</text>\n"
		"<text x='%d' y='%d'>- - asked %dx what it used</text>\n"
		"<circle cx='%d' cy='%d' r='4' fill='#36c'/><text x='%d' "
		"y='%d'>a job on a node</text>\n<circle cx='%d' cy='%d' r='5' "
		"fill='#d22' stroke='#000'/><text x='%d' y='%d'>filled up"
		"</text>\n", W - R + 10, T + 10, W - R + 10, T + 30, OVERSIZED,
		W - R + 14, T + 46, W - R + 24, T + 50, W - R + 14, T + 66,
		W - R + 24, T + 70);
}

/* s as XML character data (a name from a log may hold anything) */
static void
xml_text(FILE *f, const char *s)
{
	for (; *s; s++)
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '\'': fputs("&apos;", f); break;
		case '"': fputs("&quot;", f); break;
		default:
			if ((unsigned char)*s >= 0x20)
				fputc(*s, f);
		}
}

static int
write_svg(const char *path)
{
	struct axis a;
	char u[64];
	FILE *f = fopen(path, "we");

	if (!f) {
		fprintf(stderr, "%s: suggest: cannot write '%s': %s\n", prog,
			path, strerror(errno));
		return -1;
	}
	axis_of(&a);
	fprintf(f, "<?xml version='1.0' encoding='UTF-8'?>\n<svg xmlns='http:"
		"//www.w3.org/2000/svg' width='%d' height='%d' viewBox='0 0 %d "
		"%d' font-family='sans-serif' font-size='12'>\n<rect width='100%%'"
		" height='100%%' fill='white'/>\n<text x='%d' y='28' "
		"font-size='16'>jobshm: asked against peak used, %zu job shm%s"
		"</text>\n", W, H, W, H, L, db.records,
		db.records == 1 ? "" : "s");
	svg_axes(f, &a);
	svg_guides(f, &a);
	for (size_t i = 0; i < db.n; i++)
		for (size_t j = 0; j < db.g[i].n; j++) {
			const struct rec *r = &db.g[i].r[j];
			uint64_t y = r->peak < ldexp(1.0, (int)a.lo) ?
				     (uint64_t)ldexp(1.0, (int)a.lo) : r->peak;

			fprintf(f, "<circle class='job%s' data-job='%" PRIu32
				"' data-size='%" PRIu64 "' data-peak='%" PRIu64
				"' cx='%.1f' cy='%.1f' r='%d' fill='%s'%s>"
				"<title>job %" PRIu32 " (", r->full ?
				" full" : "", r->jobid, r->size, r->peak,
				px(&a, r->size), py(&a, y), r->full ? 5 : 4,
				r->full ? "#d22" : "#36c", r->full ?
				" stroke='#000'" : " fill-opacity='0.7'",
				r->jobid);
			xml_text(f, jobshm_cli_user(db.g[i].uid, u, sizeof(u)));
			if (db.g[i].name[0])
				fputs(", ", f);
			xml_text(f, db.g[i].name);
			fprintf(f, ")</title></circle>\n");
		}
	fprintf(f, "</svg>\n");
	return fclose(f) == 0 ? 0 : -1;
}

/* ---- the command ------------------------------------------------------ */

static int
read_logs(int n, char **logs, const struct jobshm_conf *conf, struct opts *o)
{
	if (!n) {
		if (!conf->usage_log[0]) {
			fprintf(stderr, "%s: suggest: usage_log is off in %s: "
				"give the logs to read (LOG...)\n", prog, o->conf);
			return -1;
		}
		return jobshm_usage_log_scan(conf, 0, add, bad_line, o);
	}
	for (int i = 0; i < n; i++)
		if (jobshm_usage_file_scan(logs[i], add, bad_line, o) < 0) {
			fprintf(stderr, "%s: suggest: cannot read '%s': %s\n",
				prog, logs[i], strerror(errno));
			return -1;
		}
	return 0;
}

static int
load(struct opts *o, struct jobshm_conf *conf)
{
	jobshm_err_t err;

	jobshm_conf_defaults(conf);
	if (!o->conf_given && access(o->conf, F_OK) < 0)
		return 0;	/* the defaults, as the plugin has them */
	if (jobshm_conf_load(conf, o->conf, &err) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err.msg);
		return -1;
	}
	return 0;
}

int
jobshm_cli_suggest(int ac, char **av)
{
	struct opts o = { 0 };
	struct jobshm_conf conf;
	int i, rc = 0;

	o.conf = getenv("JOBSHM_CONF");
	o.conf_given = o.conf != NULL;
	if (!o.conf)
		o.conf = JOBSHM_CONF;
	if ((i = parse(ac, av, &o)) < 0)
		return -i;
	if (load(&o, &conf) < 0 || read_logs(ac - i, av + i, &conf, &o) < 0)
		return 1;
	qsort(db.g, db.n, sizeof(*db.g), cmp_group);
	if (o.json)
		print_json(jobshm_conf_max_bytes(&conf));
	else if (db.n)
		print_table(jobshm_conf_max_bytes(&conf));
	if (!db.n)
		fprintf(stderr, "%s: suggest: no usage records%s\n", prog,
			o.user_arg || o.name || o.since ? " match" : "");
	if (o.svg && write_svg(o.svg) < 0)
		rc = 1;
	for (size_t k = 0; k < db.n; k++)
		free(db.g[k].r);
	free(db.g);
	return rc ? rc : db.n ? 0 : 1;
}
