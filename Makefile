SHELL := /bin/bash
PYTEST_WORKERS ?= 2

.PHONY: install format lint type pytest test benchmark

# CPU build of torch first: a bare `pip install torch` would pull a multi-GB CUDA build
install:
	pip install torch==2.13.0
	pip install -e ".[tests,zoo,envs]"

format:
	ruff format .
	ruff check --fix .

lint:
	ruff check .
	ruff format --check .

type:
	mypy

# Every test, the learning tests (marked slow) included
pytest:
	python -m pytest -n $(PYTEST_WORKERS) --durations=15

# The full check run by CI
test: lint type pytest

benchmark:
	python benchmarks/fvp_speed.py
