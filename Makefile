# Two commands: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test install clean bench bench-setup mediapipe-setup

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
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

clean:
	rm -rf $(VENV) build *.egg-info
