SHELL := /bin/bash
PYTEST_WORKERS ?= 2

.PHONY: install format lint type pytest test docs benchmark

# torch first, at the version the benchmarks ran on. On Linux, PyPI's torch is the CUDA build: on a machine
# without a GPU install the CPU build of this version first (README, Install), which then satisfies this line.
install:
	pip install torch==2.13.0
	pip install -e ".[tests,zoo,envs,docs]"

format:
	ruff format .
	ruff check --fix .

lint:
	ruff check .
	ruff format --check .

type:
	mypy

# Every test, the learning tests (marked slow) included. -rfEs: the summary lists failures, errors and skips with
# their reasons (the PostgreSQL tests are skipped without SB3_NPG_TEST_POSTGRES_URL: README, The two commands)
pytest:
	python -m pytest -n $(PYTEST_WORKERS) -rfEs --durations=15

# The full check run by CI
test: lint type pytest

# The documentation site (docs/, Sphinx with MyST): warnings are errors, references into sb3_npg must resolve
docs:
	python -m sphinx -W --keep-going -n -b html docs docs/_build/html

benchmark:
	python benchmarks/fvp_speed.py
