# Two commands on a fresh machine: `make run` (train + evaluate on the built-in
# synthetic data) and `make test` (the test suite). Both create .venv and
# install the package first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: run test lint install clean

$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,reproduction]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/adaptau-train --data synthetic --backbone mf --strategy adap-tau \
		--epochs 40 --lr 0.005 --batch-size 1024 --patience 5 --output runs/quickstart

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 -q tests

clean:
	rm -rf $(VENV) runs
