"""Every script of ``examples/`` runs as ``__main__``, with a tiny budget, in a fresh working directory."""

import runpy
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch as th

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"
EXAMPLES = sorted(path.name for path in EXAMPLES_DIR.glob("*.py"))
# The examples that train: they run torch on one thread unless --num-threads says otherwise
TRAINING_EXAMPLES = ("npg_quickstart.py", "klppo_quickstart.py", "callbacks_tensorboard.py", "custom_policy.py")
TRAINING_EXAMPLES += ("load_saved_model.py",)
# What each example needs beyond the core package
NEEDS = {"zoo_usage.py": ("rl_zoo3", "zoo"), "callbacks_tensorboard.py": ("tensorboard", "extra")}
TINY_BUDGET = "500"
# Folders that Python and the tools write wherever they run
CACHES = ("__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache")


def repo_files() -> set[str] | None:
    """The untracked, ignored and modified files of the checkout (caches left out); None outside a git checkout."""
    git = shutil.which("git")
    if git is None:
        return None
    args = [git, "-C", str(ROOT), "status", "--porcelain", "--ignored", "--untracked-files=all"]
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        return None
    return {line for line in result.stdout.splitlines() if not any(cache in line for cache in CACHES)}


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
def test_example_runs(name, tmp_path, monkeypatch, capsys):
    # In this process (a fresh interpreter per script would spend most of the time importing torch)
    if name in NEEDS:
        module, extra = NEEDS[name]
        pytest.importorskip(module, reason=f"{name} needs {module}: pip install 'sb3-npg[{extra}]'")
    cwd, temp = tmp_path / "cwd", tmp_path / "temp"
    cwd.mkdir()
    temp.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # the default output folder lands here
    monkeypatch.setenv("SB3_NPG_EXAMPLE_TIMESTEPS", TINY_BUDGET)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setattr(sys, "argv", [name])
    before = repo_files()
    th.set_num_threads(2)  # torch's default on a 2-core machine (the conftest fixture restores the count)
    runpy.run_path(str(EXAMPLES_DIR / name), run_name="__main__")
    out = capsys.readouterr().out
    if name in TRAINING_EXAMPLES:
        assert th.get_num_threads() == 1, f"{name} trains on torch's default threads"

    # Outputs go to a temporary folder by default: nothing in the working directory or the checkout
    assert list(cwd.iterdir()) == []
    assert repo_files() == before
    # Progress is shown (SB3's table), and no result reads wrong at a tiny budget
    assert "total_timesteps" in out
    for wrong in ("-inf", "nan", "[]"):
        assert wrong not in out, f"{name} printed {wrong!r}:\n{out}"


def test_example_output_dir(tmp_path, monkeypatch, capsys):
    # --output-dir names the folder; the callback example evaluates at least once and reports it
    pytest.importorskip("tensorboard", reason="needs pip install 'sb3-npg[extra]'")
    monkeypatch.chdir(tmp_path)
    out_dir = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["callbacks_tensorboard.py", "--timesteps", TINY_BUDGET, "--output-dir", str(out_dir)])
    runpy.run_path(str(EXAMPLES_DIR / "callbacks_tensorboard.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "best evaluation: " in out and "(mean return, best of " in out
    assert "measured KL / target per update: " in out and "no update" not in out
    assert (out_dir / "models" / "best_model.zip").is_file() and (out_dir / "models" / "evaluations.npz").is_file()
    assert list((out_dir / "runs").glob("npg_cartpole_1/events.out.tfevents.*"))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]
