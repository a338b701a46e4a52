# The two set-up commands of the README: `make run` (install + the main 15 Scene experiment, offline)
# and `make test` (install + the whole test suite, as CI runs it).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED ?= ../shared
# The practical's experiment with the best offline VGG16 setting measured in the README.
RUN_ARGS ?= --data $(SHARED)/data/15scene --model vgg16 --weights imagenet-conv --layer pool4 relu5_1 pool5 --pool avg

.PHONY: install install-test run test

$(BIN)/python:
	$(PY) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0 -e .

install-test: $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0 -e ".[test,ray]"
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium) || \
	  echo "chromium could not be installed: the browser test will be skipped"

run: install
	$(BIN)/transferlab run $(RUN_ARGS)

test: install-test
	$(BIN)/python -m pytest -q --durations=15
