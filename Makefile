# Everything runs inside .venv; `make test` and `make demo` set it up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install system-deps test test-slow test-ray test-ui test-live lint demo verify bench bench-scale train-synth train-synth-full clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: this release is a CPU build on the project's machines; a looser pin pulls CUDA
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,ui]'
	# test oracle for our CPBD; its declared dependencies (matplotlib pins) are not needed
	$(PY) -m pip install -q --no-deps cpbd==1.0.7
	touch $@

system-deps:
	bash scripts/install-system-deps.sh

install: $(STAMP) system-deps

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

# --ray: a local two-node Ray cluster (head + one worker node), a worker killed mid-run (~4 min)
test-ray: install
	$(PY) -m pip install -q -e '.[ray]'
	$(PY) -m pytest -q -m slow tests/test_ray.py

# `pcavs ui` in headless Chromium (Debian chromium + playwright-core from npm); screenshots in /tmp/ui-shots
test-ui: install
	PCAVS_UI_TESTS=1 bash scripts/install-system-deps.sh
	cd tests/ui && npm ci --no-audit --no-fund --loglevel=error
	$(PY) -m pytest -q -m slow tests/test_ui.py

# the Live tab (WebRTC) in headless Chromium with fake microphone and camera: frames arrive, A/V offset <= 40 ms
test-live: install
	$(PY) -m pip install -q -e '.[live]'
	command -v chromium >/dev/null || apt-get install -y chromium
	$(PY) -m pytest -q -s -m live tests/test_live_ui.py

lint: install
	$(VENV)/bin/ruff check pcavs tests benchmarks

verify: install
	$(VENV)/bin/pcavs verify-reference tests/data/official-v0

demo: install
	$(VENV)/bin/pcavs demo

# the CPU recipe: SynthTalk data, then sync / identity / joint training of the small preset
train-synth: install
	bash scripts/train_synth.sh

# train-synth plus 8000 more landmark steps and four joint passes with identity frames from other clips, the last three with loss.pose_geometry; resumable, run it in the background
train-synth-full: install
	bash scripts/train_synth_full.sh

bench: install
	$(PY) benchmarks/inference.py

# batch videos/min (local pool vs Ray) and preprocess frames/s per core
bench-scale: install
	$(PY) -m pip install -q -e '.[ray]'
	$(PY) benchmarks/scale.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
