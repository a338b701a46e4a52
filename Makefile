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

# Chromium renders the report in its browser test. Under CI ($CI set, as .ci/run does) failing to get it fails
# the install; elsewhere the test reports itself skipped, with the reason.
# The docs extra: tests/test_docs.py builds the manual with mkdocs --strict.
install-test: $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0 -e ".[test,ray,docs]"
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium) || \
	  { echo "chromium could not be installed (apt-get install -y chromium): the report's browser test needs it" >&2; \
	    case "$$CI" in ""|0|false|False|FALSE) ;; *) exit 1 ;; esac; }

run: install
	$(BIN)/transferlab run $(RUN_ARGS)

test: install-test
	$(BIN)/python -m pytest -q --durations=15
