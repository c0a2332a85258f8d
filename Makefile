# Two commands: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PY_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
# `make test PYTHON=python3.12` gets a venv of its own (.venv-py3.12), so the default .venv is kept
VENV ?= $(if $(filter command line environment,$(origin PYTHON)),.venv-py$(PY_VERSION),.venv)
BIN := $(VENV)/bin
PYPROJECT_SUM := $(shell cksum < pyproject.toml | cut -d' ' -f1)
STAMP := $(VENV)/.installed-$(PYPROJECT_SUM)

.PHONY: demo test install clean bench bench-setup mediapipe-setup lerobot-check

$(BIN)/python:
	@test -n "$(PY_VERSION)" || { echo "make: PYTHON=$(PYTHON) is not a Python interpreter"; exit 2; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "make: $(PYTHON) is Python $(PY_VERSION); this project needs 3.11 or newer"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	@# this tree was installed as "teleop" before it became dexteleop: drop that name (never PyPI's teleop)
	@if $(BIN)/python -m pip show teleop 2>/dev/null | grep -qx "Editable project location: $(CURDIR)"; then \
		$(BIN)/python -m pip uninstall -q -y teleop; fi
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/teleop warmup
	$(BIN)/teleop models fetch
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/teleop demo

test: install
	$(BIN)/python -m pytest -q

# dex-retargeting (the retargeting benchmark's reference) in its own venv: it needs torch, pinned
# to the CPU wheel on this machine's disk (an unpinned torch pulls a multi-GB CUDA build).
.venv-bench/.installed:
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install -q --upgrade pip
	.venv-bench/bin/python -m pip install -q "torch==2.13.0" "dex-retargeting==0.5.0" six
	touch $@

bench-setup: .venv-bench/.installed

# MediaPipe itself (the hand tracker's reference: teleop/bench/mediapipe_reference.py runs in it) in
# its own venv: mediapipe 0.10.21 needs numpy<2, the runtime uses numpy 2.
.venv-mediapipe/.installed:
	$(PYTHON) -m venv .venv-mediapipe
	.venv-mediapipe/bin/python -m pip install -q --upgrade pip
	.venv-mediapipe/bin/python -m pip install -q "mediapipe==0.10.21" "numpy<2"
	touch $@

mediapipe-setup: .venv-mediapipe/.installed

bench: install bench-setup
	$(BIN)/teleop bench bus --json
	$(BIN)/teleop bench sim --json
	$(BIN)/teleop bench retarget --json
	$(BIN)/teleop bench tactile --json
	$(BIN)/teleop bench faults --json

# LeRobot (>= 0.6, Python >= 3.12) in the same environment as the runtime, in its own venv: it pulls a CUDA
# torch of several GB, so it is kept out of `make test`. Records the demo, exports it and loads every frame
# with LeRobotDataset (docs/data-format.md).
LEROBOT_PYTHON ?= $(shell for p in $$(command -v python3.12 python3.13) $(HOME)/.pyenv/versions/3.1[23]*/bin/python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; break; }; done)
LEROBOT_VENV := .venv-lerobot
LEROBOT_STAMP := $(LEROBOT_VENV)/.installed-$(PYPROJECT_SUM)

$(LEROBOT_STAMP): pyproject.toml
	@test -n "$(LEROBOT_PYTHON)" || { echo "make: lerobot-check needs Python 3.12 or newer: set LEROBOT_PYTHON"; exit 2; }
	test -x $(LEROBOT_VENV)/bin/python || $(LEROBOT_PYTHON) -m venv $(LEROBOT_VENV)
	$(LEROBOT_VENV)/bin/python -m pip install -q --upgrade pip
	$(LEROBOT_VENV)/bin/python -m pip install -q -e '.[lerobot]'
	$(LEROBOT_VENV)/bin/teleop warmup
	rm -f $(LEROBOT_VENV)/.installed-* && touch $@

lerobot-check: $(LEROBOT_STAMP)
	$(LEROBOT_VENV)/bin/teleop lerobot-check

clean:
	rm -rf $(VENV) build *.egg-info
