# jobshm - per-job node-wide shared memory for Slurm.
#   make            build the plugin, the library and the CLI
#   make check      unit tests (plain and ASan/UBSan) and the cluster tests
#   make demo       set up a local Slurm with the plugin and run one job
#   make install    PREFIX=/usr/local DESTDIR= (plugin to $(libdir)/slurm)

VERSION    := 0.1.0
PREFIX     ?= /usr/local
exec_prefix?= $(PREFIX)
bindir     ?= $(exec_prefix)/bin
libdir     ?= $(exec_prefix)/lib
includedir ?= $(PREFIX)/include
mandir     ?= $(PREFIX)/share/man
sysconfdir ?= /etc/slurm
pkgconfigdir ?= $(libdir)/pkgconfig
plugindir  ?= $(libdir)/slurm
DESTDIR    ?=
PYTHON     ?= /usr/bin/python3

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes
ifeq ($(CI),true)
WARN    += -Werror
endif
DEPS_CFLAGS := $(shell pkg-config --cflags libconfig hwloc 2>/dev/null)
DEPS_LIBS   := $(shell pkg-config --libs libconfig hwloc 2>/dev/null || echo -lconfig -lhwloc) -lnuma
ALL_CFLAGS  = $(CFLAGS) $(WARN) -std=gnu11 -fPIC -Ilib $(DEPS_CFLAGS) \
	      -DJOBSHM_CLI='"$(bindir)/jobshm"' \
	      -DJOBSHM_CONF='"$(sysconfdir)/jobshm.conf"'

LIB_SRC := lib/err.c lib/size.c lib/conf.c lib/admit.c lib/job.c lib/list.c \
	   lib/reap.c lib/segment.c lib/topo.c lib/place.c \
	   lib/mountinfo.c lib/fsdax.c
LIB_OBJ := $(LIB_SRC:.c=.o)
SONAME  := libjobshm.so.0

BUILT = lib/libjobshm.a lib/$(SONAME) spank/jobshm.so cli/jobshm lib/jobshm.pc \
	$(PY_MOD)

.PHONY: all check unit unit-asan cluster-test demo install uninstall soak \
	install-test clean bench cluster-start cluster-stop deps

all: $(BUILT)

%.o: %.c lib/jobshm.h lib/internal.h
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

lib/libjobshm.a: $(LIB_OBJ)
	$(AR) rcs $@ $^

lib/$(SONAME): $(LIB_OBJ)
	$(CC) $(ALL_CFLAGS) -shared -Wl,-soname,$(SONAME) -o $@ $^ \
		$(LDFLAGS) $(DEPS_LIBS)

lib/jobshm.pc: lib/jobshm.pc.in Makefile
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@libdir@|$(libdir)|' \
	    -e 's|@includedir@|$(includedir)|' -e 's|@VERSION@|$(VERSION)|' \
	    $< > $@

spank/jobshm.so: spank/jobshm.c spank/version.map lib/libjobshm.a
	$(CC) $(ALL_CFLAGS) -shared -o $@ spank/jobshm.c lib/libjobshm.a \
		-Wl,--version-script=spank/version.map $(LDFLAGS) $(DEPS_LIBS)

cli/jobshm: cli/jobshm.c cli/alive.c cli/alive.h lib/libjobshm.a
	$(CC) $(ALL_CFLAGS) -o $@ cli/jobshm.c cli/alive.c lib/libjobshm.a \
		$(LDFLAGS) $(DEPS_LIBS) -lslurm

# ---- tests -----------------------------------------------------------------
UNIT_SRC := tests/unit/test_size.c tests/unit/test_conf.c tests/unit/test_job.c \
	    tests/unit/test_segment.c tests/unit/test_place.c \
	    tests/unit/test_fsdax.c tests/unit/test_attacks.c
UNIT_BIN := $(UNIT_SRC:.c=)

tests/unit/%: tests/unit/%.c $(LIB_SRC) lib/jobshm.h lib/internal.h
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB_SRC) $(LDFLAGS) $(DEPS_LIBS) -lcmocka

tests/unit/%.asan: tests/unit/%.c $(LIB_SRC) lib/jobshm.h lib/internal.h
	$(CC) $(ALL_CFLAGS) -O1 -fsanitize=address,undefined \
		-fno-sanitize-recover=all -fno-omit-frame-pointer -o $@ $< \
		$(LIB_SRC) $(LDFLAGS) $(DEPS_LIBS) -lcmocka

unit: $(UNIT_BIN)
	@for t in $(UNIT_BIN); do \
		(cd tests/unit && ./$$(basename $$t)); rc=$$?; \
		[ $$rc = 77 ] && echo "$$t: SKIPPED (needs root)"; \
		[ $$rc = 0 ] || [ $$rc = 77 ] || exit $$rc; done

unit-asan: $(UNIT_BIN:=.asan)
	@for t in $(UNIT_BIN:=.asan); do \
		(cd tests/unit && ./$$(basename $$t)); rc=$$?; \
		[ $$rc = 77 ] && echo "$$t: SKIPPED (needs root)"; \
		[ $$rc = 0 ] || [ $$rc = 77 ] || exit $$rc; done

cluster-test: all
	tests/cluster/cluster.sh start
	$(PYTHON) -m pytest -v tests/integration; rc=$$?; \
		tests/cluster/cluster.sh stop; exit $$rc

check: all unit unit-asan python-test launcher-test fuzz-check install-test \
	cluster-test

install-test: all
	tests/install/test_install.sh

cluster-start: all
	tests/cluster/cluster.sh start

cluster-stop:
	tests/cluster/cluster.sh stop

deps:
	tests/cluster/deps.sh

demo: deps all
	tests/cluster/demo.sh

bench-rro: all
	d=$$(mktemp -d /tmp/jobshm-bench.XXXXXX) && \
	mount -t tmpfs -o size=8G,huge=$${HUGE:-within_size} jobshm-bench $$d && \
	JOBSHM_DIR=$$d \
	JOBSHM_PREFIX=jobshm.bench. $(PYTHON) bench/rro_bench.py; rc=$$?; \
	umount $$d; rmdir $$d; exit $$rc

bench: all
	tests/cluster/cluster.sh start
	$(PYTHON) bench/step_overhead.py; rc=$$?; \
		tests/cluster/cluster.sh stop; exit $$rc

# ---- install -----------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(plugindir) $(DESTDIR)$(bindir) \
		$(DESTDIR)$(libdir) $(DESTDIR)$(includedir) \
		$(DESTDIR)$(pkgconfigdir) $(DESTDIR)$(mandir)/man1 \
		$(DESTDIR)$(mandir)/man8
	install -m 755 spank/jobshm.so $(DESTDIR)$(plugindir)/jobshm.so
	install -m 755 cli/jobshm $(DESTDIR)$(bindir)/jobshm
	install -m 755 launcher/enqueue_jobshm $(DESTDIR)$(bindir)/enqueue_jobshm
	install -m 644 man/enqueue_jobshm.1 $(DESTDIR)$(mandir)/man1/enqueue_jobshm.1
	install -m 644 lib/libjobshm.a $(DESTDIR)$(libdir)/libjobshm.a
	install -m 755 lib/$(SONAME) $(DESTDIR)$(libdir)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(libdir)/libjobshm.so
	install -m 644 lib/jobshm.h $(DESTDIR)$(includedir)/jobshm.h
	install -m 644 lib/jobshm.pc $(DESTDIR)$(pkgconfigdir)/jobshm.pc
	install -m 644 man/jobshm.1 $(DESTDIR)$(mandir)/man1/jobshm.1
	install -m 644 man/jobshm.8 $(DESTDIR)$(mandir)/man8/jobshm.8
	install -d $(DESTDIR)$(pythondir)/jobshm
	install -m 644 python/jobshm/__init__.py $(DESTDIR)$(pythondir)/jobshm/
	install -m 755 $(PY_MOD) $(DESTDIR)$(pythondir)/jobshm/

uninstall:
	rm -f $(DESTDIR)$(plugindir)/jobshm.so $(DESTDIR)$(bindir)/jobshm \
	      $(DESTDIR)$(bindir)/enqueue_jobshm \
	      $(DESTDIR)$(mandir)/man1/enqueue_jobshm.1 \
	      $(DESTDIR)$(libdir)/libjobshm.a $(DESTDIR)$(libdir)/$(SONAME) \
	      $(DESTDIR)$(libdir)/libjobshm.so $(DESTDIR)$(includedir)/jobshm.h \
	      $(DESTDIR)$(pkgconfigdir)/jobshm.pc \
	      $(DESTDIR)$(mandir)/man1/jobshm.1 $(DESTDIR)$(mandir)/man8/jobshm.8
	rm -rf $(DESTDIR)$(pythondir)/jobshm

clean:
	rm -f $(LIB_OBJ) $(BUILT) $(UNIT_BIN) $(UNIT_BIN:=.asan) $(FUZZ_TARGETS) \
	      launcher/enqueue_jobshm
	rm -rf tests/fuzz/new
	rm -rf tests/integration/__pycache__ .pytest_cache

# ---- fuzzing (clang + libclang-rt from Debian) -----------------------------
FUZZ_TARGETS := tests/fuzz/fuzz_size tests/fuzz/fuzz_conf
FUZZ_SECONDS ?= 30
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -Ilib $(DEPS_CFLAGS)

tests/fuzz/%: tests/fuzz/%.c $(LIB_SRC) lib/jobshm.h lib/internal.h
	clang $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRC) $(DEPS_LIBS)

# a bounded run for make check; corpus additions stay in a scratch dir
fuzz-check: $(FUZZ_TARGETS)
	@set -e; for t in $(FUZZ_TARGETS); do n=$$(basename $$t | sed s/fuzz_//); \
		mkdir -p tests/fuzz/new/$$n; \
		LSAN_OPTIONS=suppressions=tests/fuzz/lsan.supp \
		$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
		    tests/fuzz/new/$$n tests/fuzz/corpus/$$n 2>&1 | tail -2; done

# longer runs that grow the committed corpus
fuzz: $(FUZZ_TARGETS)
	@set -e; for t in $(FUZZ_TARGETS); do n=$$(basename $$t | sed s/fuzz_//); \
		LSAN_OPTIONS=suppressions=tests/fuzz/lsan.supp \
		$$t -max_total_time=$${FUZZ_LONG:-600} -max_len=4096 \
		    tests/fuzz/corpus/$$n; done

# ---- soak (not in make check) ------------------------------------------------
SOAK_MINUTES ?= 5
soak: all
	tests/cluster/cluster.sh start
	SOAK_MINUTES=$(SOAK_MINUTES) $(PYTHON) tests/soak.py; rc=$$?; \
		tests/cluster/cluster.sh stop; exit $$rc

# ---- Python worker runtime (Debian's python3, python3-dev, python3-numpy) ----
PY_INC  := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null)
PY_EXT  := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))' 2>/dev/null)
PY_MOD  := python/jobshm/_jobshm$(PY_EXT)
PY_VER  := $(shell $(PYTHON) -c 'import sys; print("python%d.%d" % sys.version_info[:2])' 2>/dev/null)
# on Debian's sys.path for PREFIX=/usr/local (and /usr)
pythondir ?= $(libdir)/$(PY_VER)/dist-packages

$(PY_MOD): python/_jobshm.c lib/libjobshm.a lib/jobshm.h
	$(CC) $(ALL_CFLAGS) -Wno-cast-function-type -I$(PY_INC) -shared \
		-o $@ python/_jobshm.c lib/libjobshm.a $(LDFLAGS) $(DEPS_LIBS)

python: $(PY_MOD)
all: $(PY_MOD)

python-test: $(PY_MOD)
	PYTHONPATH=python $(PYTHON) -m pytest -q tests/python

# ---- launcher ------------------------------------------------------------------
LAUNCH_SRC := launcher/main.c launcher/opts.c launcher/script.c launcher/xml.c
launcher/enqueue_jobshm: $(LAUNCH_SRC) launcher/opts.h lib/libjobshm.a
	$(CC) $(ALL_CFLAGS) -Ilauncher -o $@ $(LAUNCH_SRC) lib/libjobshm.a \
		$(LDFLAGS) $(DEPS_LIBS)
all: launcher/enqueue_jobshm

launcher-test: launcher/enqueue_jobshm
	$(PYTHON) -m pytest -q tests/launcher
