# mod_misdirect: build with apxs, try it with `make demo`, test with
# `make test`.  Both install the Debian packages they need when missing;
# a plain `make` (all, install) only builds, and says which packages it
# lacks.  WERROR=1 turns warnings into errors (make test and CI set it);
# V=1 shows the build's commands.

APXS    ?= apxs
CC      ?= cc
PROVE   ?= prove

SRCS     = mod_misdirect.c src/misdirect_config.c src/misdirect_tls.c \
           src/misdirect_request.c \
           src/misdirect_diag.c src/misdirect_logic.c \
           src/misdirect_settings.c src/misdirect_model.c \
           src/misdirect_lint.c src/misdirect_predict_layout.c \
           src/misdirect_predict_matrix.c src/misdirect_predict_dump.c \
           src/misdirect_counters.c src/misdirect_stripes.c \
           src/misdirect_status.c src/misdirect_metrics.c \
           src/misdirect_names.c src/misdirect_fold.c src/misdirect_text.c \
           src/misdirect_vhosts.c src/misdirect_certs.c \
           src/misdirect_attrib.c
HDRS     = src/misdirect_logic.h src/misdirect_private.h \
           src/misdirect_predict.h \
           src/misdirect_config.h \
           src/misdirect_counters.h src/misdirect_stripes.h \
           src/misdirect_model.h
MODULE   = .libs/mod_misdirect.so
WARN     = -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror)
EXTRA_CFLAGS  ?=
EXTRA_LDFLAGS ?=
FLAGS_STAMP = .build-flags
UNIT     = t/unit/test_logic

# What each target needs on a Debian 12 machine.
BUILD_PKGS = apache2 apache2-dev apache2-ssl-dev libssl-dev openssl
DEMO_PKGS  = $(BUILD_PKGS) curl nghttp2-client libio-socket-ssl-perl \
             libjson-pp-perl
TEST_PKGS  = $(DEMO_PKGS) python3-h2 perl

.PHONY: all install demo test unit clean have-build deps-build deps-demo \
        deps-test deps-prometheus

all: $(MODULE)

$(MODULE): $(SRCS) $(HDRS) $(FLAGS_STAMP) | have-build
	@echo "mod_misdirect: building .libs/mod_misdirect.so$(if \
	    $(filter 1,$(WERROR)), (warnings are errors))"
	$(Q)$(APXS) -c $(addprefix -Wc$(comma),$(WARN)) \
	    $(addprefix -Wc$(comma),$(EXTRA_CFLAGS)) \
	    $(addprefix -Wl$(comma),$(EXTRA_LDFLAGS)) -lssl -lcrypto \
	    -o mod_misdirect.la $(SRCS) $(QUIET_BUILD)

comma := ,

# Quiet by default: apxs and libtool echo some 50 command lines, which go
# to $(BUILD_LOG); what the compiler says (warnings, errors) is shown, and
# on a failure so is where the full log is.  `make V=1` shows everything.
V         ?= 0
BUILD_LOG  = .build.log
ifeq ($(V),1)
Q           =
QUIET_BUILD =
else
Q           = @
QUIET_BUILD = >$(BUILD_LOG) 2>&1; rc=$$?; \
    grep -Ev -e '--mode=(compile|link)' \
        -e '^libtool: (compile|link|install): ' $(BUILD_LOG) \
        || { [ $$rc = 0 ] || cat $(BUILD_LOG); }; \
    [ $$rc = 0 ] || { echo "mod_misdirect: the build failed; its commands" \
        "are in $(BUILD_LOG) (or run make V=1)"; exit $$rc; }
endif

# The flags of the last build: when they change (make, then make test,
# which sets WERROR=1), the module and the unit test build again.
$(FLAGS_STAMP): FORCE
	@echo '$(WARN) $(EXTRA_CFLAGS) $(EXTRA_LDFLAGS)' | cmp -s - $@ \
	    2>/dev/null || echo '$(WARN) $(EXTRA_CFLAGS) $(EXTRA_LDFLAGS)' > $@
.PHONY: FORCE
FORCE:

# apt-get as the deps-* targets run it: no questions, and up to 5 minutes
# of waiting for the dpkg lock while another apt-get, dpkg or
# unattended-upgrades holds it.  That option does not cover the lock of
# `apt-get update` (/var/lib/apt/lists/lock, apt 2.6), so APT_UPDATE
# retries it for as long.
APT_GET    = DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300
APT_UPDATE = { ok=0; for i in $$(seq 60); do \
        if out=$$($(APT_GET) update -qq 2>&1); then ok=1; break; fi; \
        case "$$out" in *'Could not get lock'*) ;; *) break ;; esac; \
        [ $$i = 1 ] && echo "mod_misdirect: another apt-get holds the" \
            "package lists; waiting for it (at most 5 minutes)"; \
        sleep 5; \
    done; [ $$ok = 1 ] || { echo "$$out" >&2; false; }; }
# Says which it is and stops, where apt-get cannot install.
NEED_ROOT  = [ "$$(id -u)" = 0 ] || { echo "mod_misdirect: missing Debian" \
        "packages:$$missing; install them as root (apt-get" \
        "install$$missing)" >&2; exit 1; }

# Installs the packages of $(1) that dpkg does not know as installed,
# after saying which.
define need_pkgs
	@missing=""; for p in $(1); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	        | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    $(NEED_ROOT); \
	    echo "mod_misdirect: installing Debian packages:$$missing"; \
	    $(APT_UPDATE) && \
	    $(APT_GET) install -y -qq --no-install-recommends $$missing \
	        >/dev/null; \
	fi
endef

# What a build needs, checked but never installed: every missing piece
# named at once, with the packages that bring it.
have-build:
	@command -v $(APXS) >/dev/null 2>&1 || { echo "mod_misdirect: no" \
	    "$(APXS): apt-get install apache2-dev apache2-ssl-dev" \
	    "(Debian), or dnf install httpd-devel (RHEL, Fedora), or make" \
	    "APXS=/path/to/apxs"; exit 1; }
	@missing=""; \
	ssl="the OpenSSL headers (Debian: libssl-dev; RHEL, Fedora:"; \
	ssl="$$ssl openssl-devel)"; \
	echo '#include <openssl/ssl.h>' | $(CC) -E -x c - >/dev/null 2>&1 \
	    || missing="$$ssl"; \
	inc=$$($(APXS) -q INCLUDEDIR); \
	hooks="$$inc/mod_ssl_openssl.h, mod_ssl's hooks, where apxs keeps"; \
	hooks="$$hooks httpd's headers (Debian: apache2-ssl-dev, which also"; \
	hooks="$$hooks brings libssl-dev; RHEL, Fedora: httpd-devel)"; \
	test -f "$$inc/mod_ssl_openssl.h" \
	    || missing="$$missing$${missing:+; }$$hooks"; \
	test -z "$$missing" || { echo "mod_misdirect: missing $$missing"; \
	    exit 1; }

deps-build:
	$(call need_pkgs,$(BUILD_PKGS))
deps-demo:
	$(call need_pkgs,$(DEMO_PKGS))
deps-test: deps-prometheus
	$(call need_pkgs,$(TEST_PKGS))

# The tests need promtool and a Prometheus binary, not a Prometheus
# service: Debian's package starts one on every interface (:9090), so
# when this installs the package it also stops the service and keeps it
# from starting at boot: with systemctl where systemd runs, else with its
# init script and update-rc.d.
deps-prometheus:
	@dpkg-query -W -f='$${Status}\n' prometheus 2>/dev/null \
	    | grep -q '^install ok installed' || { \
	    missing=" prometheus"; $(NEED_ROOT); \
	    echo "mod_misdirect: installing Debian packages: prometheus" \
	        "(its service stopped and disabled)"; \
	    $(APT_UPDATE) && \
	    $(APT_GET) install -y -qq --no-install-recommends prometheus \
	        >/dev/null && \
	    if [ -d /run/systemd/system ]; then \
	        systemctl disable --now prometheus >/dev/null 2>&1 || true; \
	    elif [ -x /etc/init.d/prometheus ]; then \
	        /etc/init.d/prometheus stop >/dev/null 2>&1 || true; \
	        update-rc.d prometheus disable >/dev/null 2>&1 || true; \
	    fi; }

# Debian's layout (mods-available, a2enmod).  Elsewhere (RHEL and
# Fedora's conf.modules.d, a source build's httpd.conf) the module is
# installed and the two lines to add are printed.
install: $(MODULE)
	$(APXS) -i -n misdirect mod_misdirect.la
	@conf=$$($(APXS) -q SYSCONFDIR); \
	if [ -d "$$conf/mods-available" ]; then \
	    echo "install -m 644 conf/misdirect.load conf/misdirect.conf" \
	        "$$conf/mods-available/"; \
	    install -m 644 conf/misdirect.load conf/misdirect.conf \
	        "$$conf/mods-available/"; \
	    echo "mod_misdirect: enable it with 'a2enmod misdirect'," \
	        "then 'apachectl graceful'"; \
	else \
	    so=$$($(APXS) -q LIBEXECDIR)/mod_misdirect.so; \
	    test -f "$$so" || { echo "mod_misdirect: apxs -i left no $$so";\
	        exit 1; }; \
	    echo "mod_misdirect: $${conf:-apxs's SYSCONFDIR} has no" \
	        "mods-available (not Debian's layout): the module is" \
	        "installed as $$so; load it with the line"; \
	    echo "    LoadModule misdirect_module $$so"; \
	    echo "in httpd.conf (RHEL, Fedora: a file such as" \
	        "conf.modules.d/10-misdirect.conf), and copy the settings" \
	        "you want from conf/misdirect.conf."; \
	fi

# The packages first, then the build: also right under make -j.
demo: deps-demo
	@$(MAKE) --no-print-directory all
	perl t/bin/demo.pl

$(UNIT): t/unit/test_logic.c src/misdirect_logic.c $(HDRS) $(FLAGS_STAMP)
	@echo "mod_misdirect: building $@"
	$(Q)$(CC) $(WARN) -O1 -g -Isrc -o $@ t/unit/test_logic.c \
	    src/misdirect_logic.c

unit: $(UNIT)

test: deps-test
	@$(MAKE) --no-print-directory WERROR=1 all unit
	$(PROVE) -I t/lib t/

clean:
	rm -rf .libs src/.libs *.la *.lo *.slo *.o src/*.la src/*.lo \
	    src/*.slo src/*.o $(UNIT) t/tmp $(FLAGS_STAMP) $(BUILD_LOG) \
	    bench/build

# ---------------------------------------------------------------------------
# Reliability checks: fuzz/, check/.  Slow, so not part of
# `make test`; HACKING.md says what each proves.
#   make fuzz            libFuzzer targets, FUZZ_SECONDS each
#   make check-asan      t/ suite, module built with ASan+UBSan
#   make check-valgrind  httpd -X under memcheck, representative requests
#   make check-mpm       t/ suite under event, worker and prefork
#   make check-load      100,000+ requests with faults, then restarts
#   make check-shutdown  SHUTDOWN_ROUNDS SIGTERM stops under load each with
#                        and without the module: it adds no crashed child
#   make check-model     t/24-ssl-model.t on MODEL_ROUNDS random
#                        configurations (96 cross requests each)
#   make check-predict   the prediction (-D DUMP_MISDIRECT_JSON) against
#                        the real server on PREDICT_ROUNDS random
#                        configurations, every pair over HTTP/1.1 and h2
#   make check-mutants   every mutant in check/mutants.txt, built in a
#                        copy of the tree, is killed by a t/ file
#   make check-deb       the Debian package builds, installs, serves and
#                        purges cleanly (see the end of this file)
#   make check-clients   nginx, HAProxy, Caddy, Traffic Server, httpd's
#                        mod_proxy, curl, s_client, Chromium and Firefox
#                        against httpd with and without the module
#   make check-all       all of the above; says at the end which failed

CLANG        ?= clang
FUZZ_SECONDS ?= 60
LOAD_MPM     ?= event
MODEL_ROUNDS ?= 12
MODEL_SEED   ?= $(or $(MISDIRECT_MODEL_SEED),$(shell date +%s))
PREDICT_ROUNDS ?= $(or $(MISDIRECT_PREDICT_ROUNDS),20)
SHUTDOWN_ROUNDS ?= 300
FUZZ_TARGETS  = host_normalize wildcard_match host_matches ip_literal \
                path_under decide format_checks escape cover_memo \
                hello_sni
FUZZ_DIR      = check/build/fuzz
FUZZ_BINS     = $(addprefix $(FUZZ_DIR)/fuzz_,$(FUZZ_TARGETS))
ASAN_SO       = check/build/asan/mod_misdirect.so
CHECK_PKGS    = $(TEST_PKGS) clang libclang-rt-14-dev valgrind
SAN_FLAGS     = -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined

.PHONY: fuzz check-all check-asan check-valgrind check-mpm check-load \
        check-model check-predict check-mutants deps-check check-shutdown

deps-check:
	$(call need_pkgs,$(CHECK_PKGS))

$(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_common.h src/misdirect_logic.c \
                    src/misdirect_logic.h | deps-check
	@mkdir -p $(@D)
	$(CLANG) $(SAN_FLAGS) -fsanitize=fuzzer -fno-sanitize-recover=all \
	    $(WARN) -Isrc -Ifuzz -o $@ $< src/misdirect_logic.c

fuzz: deps-check $(FUZZ_BINS)
	FUZZ_SECONDS=$(FUZZ_SECONDS) check/fuzz.sh $(FUZZ_TARGETS)

# Built by clang straight into its own directory, not through apxs and
# libtool, which would write objects next to the sources of `make`.
$(ASAN_SO): $(SRCS) $(HDRS) | deps-check
	@mkdir -p $(@D)
	$(CLANG) $(SAN_FLAGS) -shared -fPIC -Wall -Wextra \
	    -Wno-missing-field-initializers \
	    -I$$($(APXS) -q INCLUDEDIR) -I$$($(APXS) -q APR_INCLUDEDIR) \
	    $$($(APXS) -q EXTRA_CPPFLAGS) -Isrc -o $@ $(SRCS) -lssl -lcrypto

check-asan: deps-check $(ASAN_SO) $(UNIT)
	CLANG=$(CLANG) check/asan.sh

check-valgrind: deps-check $(MODULE)
	perl check/valgrind.pl

check-mpm: deps-check $(MODULE) $(UNIT)
	check/mpm.sh

check-load: deps-check $(MODULE)
	LOAD_MPM=$(LOAD_MPM) perl check/load.pl
	LOAD_MPM=$(LOAD_MPM) perl check/restart.pl

# SIGTERM stops under load, with the module and with httpd alone taking
# turns; fails when the module raises the rate of crashed children.
# Niced: it runs for about half an hour beside other work.
check-shutdown: deps-check $(MODULE)
	ulimit -c unlimited; SHUTDOWN_ROUNDS=$(SHUTDOWN_ROUNDS) \
	    nice -n 10 perl check/shutdown.pl

# The model of mod_ssl's verdict against mod_ssl, on more configurations
# than `make test` samples; MISDIRECT_MODEL_SEED=N replays a failed round.
check-model: deps-test $(MODULE)
	MISDIRECT_MODEL_ROUNDS=$(MODEL_ROUNDS) MISDIRECT_MODEL_SEED=$(MODEL_SEED) \
	    $(PROVE) -I t/lib t/24-ssl-model.t

# The prediction against the real server, on random configurations;
# MISDIRECT_PREDICT_SEED=N (printed for each) replays one with
# MISDIRECT_PREDICT_ROUNDS=1.
check-predict: deps-test $(MODULE)
	MISDIRECT_PREDICT_ROUNDS=$(PREDICT_ROUNDS) perl check/predict.pl

# Plausible one-line bugs the suite must notice (check/mutants.pl says
# how); MUTANTS_ARGS="NAME ..." runs only those, "--check" only validates
# the list.
check-mutants: deps-test
	PROVE=$(PROVE) perl check/mutants.pl $(MUTANTS_ARGS)

check-all: deps-check
	@failed=""; for t in fuzz check-asan check-valgrind check-mpm \
	        check-load check-shutdown check-model check-predict \
	        check-mutants check-deb check-clients; do \
	    start=$$(date +%s); \
	    $(MAKE) --no-print-directory $$t || failed="$$failed $$t"; \
	    echo "=== $$t: $$(( $$(date +%s) - start ))s"; \
	done; \
	if [ -n "$$failed" ]; then echo "check-all: FAILED:$$failed"; \
	    exit 1; fi; \
	echo "check-all: every reliability check passed"

# Real clients in front of httpd (check/clients.pl, check/clients/): each
# set up as the tutorials show, then fixed, against the test httpd with
# and without the module.  Their packages bring services the check never
# uses: while apt-get installs them, a policy-rc.d of this target's own
# (unless the machine has one) tells the maintainer scripts to start
# none, and where systemd runs the services of the packages it installed
# are disabled too.  The check runs each program as its own child, on
# loopback ports outside the ephemeral range.
CLIENTS_PKGS     = $(TEST_PKGS) nginx haproxy caddy trafficserver \
                   chromium firefox-esr libnss3-tools
CLIENTS_SERVICES = apache2 nginx haproxy caddy trafficserver

.PHONY: check-clients deps-clients

deps-clients:
	@missing=""; for p in $(CLIENTS_PKGS); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	        | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    $(NEED_ROOT); \
	    echo "mod_misdirect: installing Debian packages:$$missing" \
	        "(their services not started)"; \
	    if [ ! -e /usr/sbin/policy-rc.d ]; then \
	        trap 'rm -f /usr/sbin/policy-rc.d' EXIT INT TERM; \
	        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; \
	        chmod 755 /usr/sbin/policy-rc.d; \
	    fi; \
	    $(APT_UPDATE) && \
	    $(APT_GET) install -y -qq --no-install-recommends $$missing \
	        >/dev/null; rc=$$?; \
	    for s in $(CLIENTS_SERVICES); do \
	        case "$$missing " in *" $$s "*) ;; *) continue ;; esac; \
	        if [ -d /run/systemd/system ]; then \
	            systemctl disable --now $$s >/dev/null 2>&1 || true; \
	        elif [ -x /etc/init.d/$$s ]; then \
	            /etc/init.d/$$s stop >/dev/null 2>&1 || true; \
	            update-rc.d $$s disable >/dev/null 2>&1 || true; \
	        fi; \
	    done; \
	    exit $$rc; \
	fi

check-clients: deps-clients $(MODULE)
	perl check/clients.pl

# The benchmark: the module's cost per request against the same
# httpd without it; writes bench/results.md.  Not part of `make test`: it
# measures and reports, it asserts nothing about time.  Pass options with
# BENCH_ARGS, e.g. `make bench BENCH_ARGS=--quick` (see bench/bench.pl).
# bench/predict.pl then appends what the prediction dumps add to
# `apache2 -t` at 5,000 vhosts (PREDICT_ARGS, e.g. --quick).
BENCH_PKGS = $(BUILD_PKGS) curl nghttp2-client valgrind util-linux perl \
             time

# bench/counters.c: the counting code alone, one counter for all CPUs
# against one per CPU, with one and two threads (bench/README.md).
BENCH_COUNTERS = bench/build/counters

.PHONY: bench deps-bench bench-counters
deps-bench:
	$(call need_pkgs,$(BENCH_PKGS))
bench: deps-bench $(MODULE) $(BENCH_COUNTERS)
	perl bench/bench.pl $(BENCH_ARGS)
	perl bench/predict.pl $(PREDICT_ARGS)
	$(BENCH_COUNTERS)

$(BENCH_COUNTERS): bench/counters.c src/misdirect_stripes.c \
                   src/misdirect_stripes.h src/misdirect_logic.h $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(WARN) -O2 -pthread -Isrc -o $@ bench/counters.c \
	    src/misdirect_stripes.c

bench-counters: $(BENCH_COUNTERS)
	$(BENCH_COUNTERS)

# ---------------------------------------------------------------------------
# Debian package (debian/).  `make deb` leaves
# dist/libapache2-mod-misdirect_<version>_<arch>.deb: dpkg-buildpackage
# runs in a copy of the tree under dist/build/ (the files git tracks or
# would track), so neither this tree's .libs/ nor the directory above it
# is touched, then lintian checks the package (errors fail, warnings
# print).  `make check-deb` installs it into the system httpd, enables
# it, serves a request through it, and purges it (check/deb.sh).

DEB_PKGS    = $(BUILD_PKGS) apache2-ssl-dev build-essential debhelper \
              dpkg-dev lintian
DEB_VERSION = $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)
DEB_ARCH    = $(shell dpkg --print-architecture)
DEB_NAME    = libapache2-mod-misdirect_$(DEB_VERSION)_$(DEB_ARCH).deb
DEB_BUILD   = dist/build

.PHONY: deb check-deb deps-deb

deps-deb:
	$(call need_pkgs,$(DEB_PKGS))

deb: deps-deb
	rm -rf $(DEB_BUILD) dist/$(DEB_NAME)
	mkdir -p $(DEB_BUILD)/src
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	    git ls-files -z -co --exclude-standard \
	        | tar --null -T - --ignore-failed-read -cf - 2>/dev/null; \
	else \
	    tar --exclude=./dist -cf - .; \
	fi | tar -xf - -C $(DEB_BUILD)/src
	cd $(DEB_BUILD)/src && dpkg-buildpackage -b -us -uc \
	    >../build.log 2>&1 || { tail -n 40 ../build.log; \
	    echo "deb: dpkg-buildpackage failed: $(DEB_BUILD)/build.log"; exit 1; }
	cp $(DEB_BUILD)/$(DEB_NAME) dist/
	lintian --fail-on error \
	    $(DEB_BUILD)/libapache2-mod-misdirect_$(DEB_VERSION)_$(DEB_ARCH).changes
	@echo "deb: dist/$(DEB_NAME)"

check-deb: deps-deb
	MAKE="$(MAKE)" DEB=dist/$(DEB_NAME) check/deb.sh
