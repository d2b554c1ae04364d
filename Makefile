# Two commands for a newcomer (see README):
#   make book   install what is needed, execute every chapter, build the HTML book
#   make test   install what is needed, run the test suite (which also builds the book in
#               workshop mode, into _build/workshop/)
# Set BLGENRE_DATA to a folder holding the British Library CSV to work offline.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
BOOK_FLAGS := -W -n --keep-going --all
UV_VERSION := 0.13.9

.PHONY: install book test lint clean browser notebooks

install: $(STAMP) $(NPM_STAMP)

# The in-browser demo's JavaScript (ONNX Runtime Web, tokenizers), pinned by package-lock.json and
# copied into the built book: no CDN. --ignore-scripts: no package needs to run code to install.
$(NPM_STAMP): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	touch $(NPM_STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	# uv installs the pinned set in about a minute where pip takes about 3.5 min on 2 cores. It does
	# not read pip's configuration, so blgenre/book/uvargs.py passes pip's package sources on
	# (local wheels, mirrors, constraints). Where uv cannot be installed, pip does the same job.
	# --compile-bytecode, as pip does: where PYTHONDONTWRITEBYTECODE is set (as on the book's
	# build machines) Python never caches bytecode itself, and every process, each chapter's
	# kernel included, then compiled torch and transformers again: CI took 30 % longer.
	if $(BIN)/pip install --quiet uv==$(UV_VERSION); then \
	  $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python \
	    -r requirements.txt -e . \
	    $$($(BIN)/python blgenre/book/uvargs.py $(BIN)/pip); \
	else \
	  $(BIN)/pip install --quiet -r requirements.txt -e .; \
	fi
	# fastai pulls in torchvision, whose wheel does not load beside the CPU torch 2.13.0
	# ("operator torchvision::nms does not exist") and makes `import transformers` fail.
	# Nothing in the book needs it, so remove it. (`pip check` then complains: expected.)
	$(BIN)/pip uninstall --quiet --yes torchvision || true
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $(STAMP)

# Headless Chromium for the browser tests (Debian package; needs root or sudo).
browser:
	command -v chromium > /dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

book: install
	$(BIN)/python -m blgenre.book.buildtools prepare
	$(BIN)/jupyter-book build . $(BOOK_FLAGS)
	@echo "Open _build/html/index.html in a browser."

test: install
	$(BIN)/python -m pytest -ra --durations=15

# Regenerate the output-free chapters/*.ipynb (for Colab and Binder) from the .md chapters.
notebooks: install
	$(BIN)/python -m blgenre.book.notebooks sync

lint: install
	$(BIN)/ruff check blgenre tests

clean:
	rm -rf _build artifacts
