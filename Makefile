# The two commands of the README, and helpers. Both install what they need first.
.PHONY: setup demo test bench
PY := .venv/bin/python

setup:
	./scripts/setup.sh

demo: setup
	$(PY) -m bridge.cli demo $(ARGS)

test: setup
	$(PY) -m pytest -q $(ARGS)

bench: setup
	$(PY) bench/codec.py
