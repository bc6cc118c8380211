# lens: thin wrapper over meson. `make check` and `make demo` do all the set-up
# on a fresh Debian 12 machine (packages from config/debian-packages).

BUILDDIR ?= build
PACKAGES := $(shell sed -e 's/\#.*//' config/debian-packages)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps setup build check demo clean

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

demo: build
	$(BUILDDIR)/cl/tools/lens-selftest

clean:
	rm -rf $(BUILDDIR)
