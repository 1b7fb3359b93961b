# certwarden — the two doors: `make demo` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Debian packages the peer tests use: real peers, never fakes.
DEB_PACKAGES := openssl softhsm2 tshark postgresql certbot lego dehydrated uacme caddy \
                chromium faketime iproute2 nmap pebble wrk openjdk-17-jre-headless curl \
                nginx postfix dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-managesieved \
                libnss3-tools

.PHONY: demo test venv deb lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Installs only what is missing; as root on a fresh Debian machine it needs no prompt.
deb:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	  | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "postfix postfix/main_mailer_type select No configuration" | $$SUDO debconf-set-selections; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

demo: $(STAMP)
	$(BIN)/certwarden demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) deb
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy
	tests/with-postgres.sh $(BIN)/pytest -p no:cacheprovider -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/parse.py
	$(BIN)/python bench/assess.py
	$(BIN)/python bench/traffic.py
	$(BIN)/python bench/ca.py
	$(BIN)/python bench/scan.py
	$(BIN)/python bench/acme.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
