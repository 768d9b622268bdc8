# mod_misdirect: build with apxs, try it with `make demo`, test with
# `make test`.  Both install the Debian packages they need when missing.

APXS    ?= apxs
CC      ?= cc
PROVE   ?= prove

SRCS     = mod_misdirect.c src/misdirect_logic.c src/misdirect_lint.c \
           src/misdirect_status.c
HDRS     = src/misdirect_logic.h src/mod_misdirect.h
MODULE   = .libs/mod_misdirect.so
WARN     = -Wall -Wextra -Werror
UNIT     = t/unit/test_logic

# What each target needs on a Debian 12 machine.
BUILD_PKGS = apache2 apache2-dev libssl-dev openssl
DEMO_PKGS  = $(BUILD_PKGS) curl nghttp2-client libio-socket-ssl-perl \
             libjson-pp-perl
TEST_PKGS  = $(DEMO_PKGS) python3-h2 perl

.PHONY: all install demo test unit clean deps-build deps-demo deps-test

all: $(MODULE)

$(MODULE): $(SRCS) $(HDRS) | deps-build
	$(APXS) -c $(addprefix -Wc$(comma),$(WARN)) -lssl -lcrypto \
	    -o mod_misdirect.la $(SRCS)

comma := ,

# Installs the packages of $(1) that dpkg does not know as installed.
define need_pkgs
	@missing=""; for p in $(1); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	        | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends $$missing >/dev/null; \
	fi
endef

deps-build:
	$(call need_pkgs,$(BUILD_PKGS))
deps-demo:
	$(call need_pkgs,$(DEMO_PKGS))
deps-test:
	$(call need_pkgs,$(TEST_PKGS))

install: $(MODULE)
	$(APXS) -i -n misdirect mod_misdirect.la
	install -m 644 conf/misdirect.load conf/misdirect.conf \
	    $$($(APXS) -q SYSCONFDIR)/mods-available/

demo: deps-demo $(MODULE)
	perl t/bin/demo.pl

$(UNIT): t/unit/test_logic.c src/misdirect_logic.c $(HDRS)
	$(CC) $(WARN) -O1 -g -Isrc -o $@ t/unit/test_logic.c \
	    src/misdirect_logic.c

unit: $(UNIT)

test: deps-test $(MODULE) $(UNIT)
	$(PROVE) -I t/lib t/

clean:
	rm -rf .libs src/.libs *.la *.lo *.slo *.o src/*.la src/*.lo \
	    src/*.slo src/*.o $(UNIT) t/tmp
