# craft-edge: two commands on a fresh machine (Python 3.11, Debian/Ubuntu x86-64).
#   make demo   set up, convert the real CRAFT weights (models/), start mosquitto if needed,
#               run the daemon on the shipped sample frames and show what a subscriber receives
#   make test   set up and run the linter and the whole test suite
# Both create .venv/ on first use; `make setup` alone only installs.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test test-device bench benchmarks clean

# The benchmarks' input sizes: the first is the bundle's coarse model; the tile model (288x288) is
# converted beside them.
SIZES := 384x640 480x864 576x1024 736x1280

$(BIN)/pip:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/pip setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e '.[device,converter,test]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	scripts/demo.sh

test: setup
	scripts/ensure-packages.sh
	$(BIN)/ruff check .
	$(BIN)/pytest -q

# The device code's tests in a venv with only the device extra (what a Pi gets), on models that the
# converter venv makes once (the same sizes and options as tests/conftest.py's fixture).
test-device: setup
	scripts/ensure-packages.sh
	[ -f .test-models/recognizer/manifest.json ] || \
		$(BIN)/convert-for-device --out .test-models --input-size 192x256 --tile-size 160x160 \
			--recognizer-variants fp32,dynamic --threads 2 --force
	scripts/test-device.sh .test-models

bench: setup
	$(BIN)/python bench/latency.py --model models/384x640 --threads 2

# The whole benchmark suite (docs/benchmarks.md): converts any missing input size first.
benchmarks: setup
	$(BIN)/pip install --quiet -e '.[device,converter,test,bench]'
	@missing=""; for s in . $(SIZES) 288x288; do [ -f models/$$s/manifest.json ] || missing=1; done; \
	if [ -n "$$missing" ]; then $(BIN)/convert-for-device --out models --force $(foreach s,$(SIZES),--input-size $(s)); fi
	$(BIN)/python bench/suite.py --models models

clean:
	rm -rf $(VENV) .venv-device .test-models models .demo
