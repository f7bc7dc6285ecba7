"""What a newcomer follows: the extras, the README's first code block and its first commands (with a tiny budget)."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch as th

from sb3_npg import NPG

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
# Arguments of the first code block that need an optional package, and the packages
OPTIONAL_FEATURES = {"tensorboard_log": {"tensorboard"}, "progress_bar=True": {"tqdm", "rich"}}


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def optional_dependencies() -> dict[str, list[str]]:
    """The extras of pyproject.toml and their requirements."""
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")
    with open(ROOT / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["project"]["optional-dependencies"]


def extras() -> dict[str, set[str]]:
    """The extras of pyproject.toml and the names of the packages they require."""
    return {
        extra: {re.split(r"[\[<>=!~; ]", requirement)[0].lower() for requirement in requirements}
        for extra, requirements in optional_dependencies().items()
    }


def test_one_pygame():
    # pygame and pygame-ce ship the same `pygame` folder: the extras take pygame from gymnasium's own extras,
    # which from 1.3 on pull pygame-ce (and Box2D's wheels), as SB3's [extra] does
    requirements = pytest.importorskip("packaging.requirements")
    with_pygame = {name for names in extras().values() for name in names if name.startswith("pygame")}
    assert not with_pygame, f"the extras list {with_pygame} besides the one gymnasium's extras install"
    envs = optional_dependencies()["envs"]
    gymnasium = next(requirements.Requirement(text) for text in envs if text.startswith("gymnasium"))
    assert {"box2d", "classic-control", "mujoco"} <= gymnasium.extras
    assert not gymnasium.specifier.contains("1.2.2") and gymnasium.specifier.contains("1.4.0")


def test_first_block_names_the_install_it_needs():
    block = code_blocks("python")[0]
    named = re.findall(r'pip install "sb3-npg\[([\w,-]+)\]"', block)
    assert named, "the first code block must say which install it needs"
    packages = set().union(*(extras()[extra] for extra in named[0].split(",")))
    used = [feature for feature in OPTIONAL_FEATURES if feature in block]
    assert used  # the check below checks something
    for feature in used:
        assert OPTIONAL_FEATURES[feature] <= packages, f"{feature} needs {OPTIONAL_FEATURES[feature]}, not in [{named[0]}]"


def test_first_block_runs(tmp_path, monkeypatch):
    for module in ("tensorboard", "tqdm", "rich"):
        pytest.importorskip(module, reason="the README's first block needs pip install 'sb3-npg[extra]'")
    block, count = re.subn(r"\.learn\([\d_]+", ".learn(64", code_blocks("python")[0])
    assert count == 1
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    th.set_num_threads(2)  # torch's default on a 2-core machine (the conftest fixture restores the count)
    exec(compile(block, "README.md", "exec"), namespace)
    assert th.get_num_threads() == 1  # the block shows how to run one torch thread per process
    assert isinstance(namespace["model"], NPG)
    assert (tmp_path / "npg_pendulum.zip").is_file()
    assert list(tmp_path.glob("runs/NPG_1/events.out.tfevents.*"))


def sb3_npg_commands() -> list[list[str]]:
    """The ``sb3-npg`` commands of the README's "The two commands" section, in order."""
    section = README.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    commands = []
    for line in section.splitlines():
        line = line.split("#", 1)[0].strip()
        if "sb3-npg " in line:
            commands.append(shlex.split(line[line.index("sb3-npg ") :]))
    return commands


def flag(args: list[str], *names: str) -> str:
    index = next(i for i, arg in enumerate(args) if arg in names)
    return args[index + 1]


@pytest.mark.slow
def test_enjoy_follows_train(tmp_path):
    pytest.importorskip("rl_zoo3", reason="the command line needs pip install 'sb3-npg[zoo]'")
    train, enjoy = sb3_npg_commands()
    assert train[1] == "train" and enjoy[1] == "enjoy"
    for names in (("--algo",), ("--env",), ("-f", "--folder")):
        assert flag(train, *names) == flag(enjoy, *names), f"enjoy's {names[0]} is not train's"

    def run(args: list[str]) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "sb3_npg", *args[1:]]
        result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        return result

    run([*train, "-n", "1024"])  # the README's command with a tiny budget: one rollout
    result = run(enjoy)  # literally
    algo, env, folder = flag(train, "--algo"), flag(train, "--env"), flag(train, "-f", "--folder")
    assert f"Loading {Path(folder) / algo / f'{env}_1' / f'{env}.zip'}" in result.stdout
    assert "Episode Reward:" in result.stdout


def test_make_test_shows_what_a_local_run_skips(tmp_path):
    # `make test` is what CI runs, but CI also starts PostgreSQL: a local run skips those tests, and must say so in
    # pytest's summary; the README says what is skipped and how to run it as CI does
    recipe = re.search(r"^pytest:\n\t(.+)$", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)
    assert recipe is not None
    argv = shlex.split(recipe.group(1).replace("$(PYTEST_WORKERS)", "0"))
    assert argv[:3] == ["python", "-m", "pytest"]
    test = "tests/test_distributed.py::test_wrong_password_is_one_line"  # needs the server, skips at once without
    env = {key: value for key, value in os.environ.items() if key not in ("SB3_NPG_TEST_POSTGRES_URL", "CI")}
    argv = [sys.executable, *argv[1:], "-p", "no:cacheprovider", str(ROOT / test)]
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    summary = result.stdout.split("short test summary info", 1)[-1]
    assert "SKIPPED" in summary and "SB3_NPG_TEST_POSTGRES_URL is not set" in summary, result.stdout[-3000:]
    assert "export SB3_NPG_TEST_POSTGRES_URL=$(.ci/postgres)" in summary

    section = README.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    assert "export SB3_NPG_TEST_POSTGRES_URL=$(.ci/postgres)" in section
    ci_run = (ROOT / ".ci" / "run").read_text()
    assert ".ci/postgres" in ci_run and ".ci/postgres" in section and "runs exactly" not in section
