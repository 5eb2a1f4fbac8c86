# The two commands of the README, and helpers. Both install what they need first.
.PHONY: setup demo test bench test-examples
PY := .venv/bin/python

setup:
	./scripts/setup.sh

demo: setup
	$(PY) -m bridge.cli demo $(ARGS)

test: setup
	$(PY) -m pytest -q $(ARGS)

bench: setup
	$(PY) bench/codec.py

# Every example in its real tool (Pd, sclang, Sonic Pi, Tidal) against a running control server.
test-examples: setup
	./scripts/examples-setup.sh
	$(PY) -m pytest -q -p no:cacheprovider examples/tests $(ARGS)
