SHELL := /bin/bash
PYTEST_WORKERS ?= 2

.PHONY: install format lint type pytest test benchmark

# torch first, at the version the benchmarks ran on. On Linux, PyPI's torch is the CUDA build: on a machine
# without a GPU install the CPU build of this version first (README, Install), which then satisfies this line.
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
