"""Every script of ``examples/`` runs as ``__main__``, with a tiny budget, in a fresh working directory."""

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
EXAMPLES = sorted(path.name for path in EXAMPLES_DIR.glob("*.py"))
# What each example needs beyond the core package
NEEDS = {"zoo_usage.py": "rl_zoo3"}
TINY_BUDGET = "500"


def test_examples_exist():
    expected = {
        "npg_quickstart.py",
        "klppo_quickstart.py",
        "callbacks_tensorboard.py",
        "custom_policy.py",
        "zoo_usage.py",
        "load_saved_model.py",
    }
    assert expected <= set(EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs(name, tmp_path, monkeypatch):
    # In this process (a fresh interpreter per script would spend most of the time importing torch)
    need = NEEDS.get(name)
    if need is not None:
        pytest.importorskip(need, reason=f"{name} needs {need}: pip install 'sb3-npg[zoo]'")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SB3_NPG_EXAMPLE_TIMESTEPS", TINY_BUDGET)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setattr(sys, "argv", [name])
    runpy.run_path(str(EXAMPLES_DIR / name), run_name="__main__")
