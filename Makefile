# lens: thin wrapper over meson. `make check` and `make demo` do all the set-up
# on a fresh Debian 12 machine (packages from config/debian-packages).

BUILDDIR ?= build
PACKAGES := $(shell sed -e 's/\#.*//' config/debian-packages)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps setup build check demo selftest clean

all: build

# Installs only what is missing; silent when everything is present.
deps:
	@missing=$$(for p in $(PACKAGES); do \
	    dpkg-query -W -f='$${db:Status-Status}\n' $$p 2>/dev/null | grep -qx installed || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi

$(BUILDDIR)/build.ninja: | deps
	meson setup $(BUILDDIR) --buildtype=debugoptimized

setup: deps $(BUILDDIR)/build.ninja

build: setup
	meson compile -C $(BUILDDIR)

check: build
	meson test -C $(BUILDDIR) --print-errorlogs -v

# lensd on config/lensd.conf: a live test pattern in motion mode, served on
# 127.0.0.1:8080 until Ctrl-C.
DEMO_URL := http://127.0.0.1:8080/

demo: build
	@echo
	@echo "lensd demo: open $(DEMO_URL) (Ctrl-C stops it)"
	@echo
	GST_PLUGIN_PATH=$(CURDIR)/$(BUILDDIR)/plugins $(BUILDDIR)/daemon/lensd --config config/lensd.conf

# lens's own check of the OpenCL device: every op against its reference
selftest: build
	$(BUILDDIR)/cl/tools/lens-selftest

clean:
	rm -rf $(BUILDDIR)
