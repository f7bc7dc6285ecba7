"""
The release as users get it: ``python -m build`` makes the sdist and the wheel, ``twine check`` passes, the wheel
carries the hyperparameter files and ``py.typed``, and installed into a fresh virtual environment (no system
site-packages) with its dependencies it runs the README's quick start from a folder outside the source tree.

Needs ``build`` and ``twine`` (``pip install build twine``) and the package index (the fresh environment
installs torch and the wheel's dependencies). The torch installed first is ``$SB3_NPG_TEST_TORCH`` (default
``torch==2.13.0``, ``make install``'s: the CPU build of it, where pip finds one locally, keeps the CUDA build out).
Without build or twine the tests are skipped; under ``CI=true`` they fail instead.
"""

import email.parser
import importlib.util
import os
import re
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest
from filelock import FileLock

import sb3_npg

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parent.parent
HYPERPARAMS = sorted(path.name for path in (ROOT / "sb3_npg" / "zoo" / "hyperparams").glob("*.yml"))
TORCH = os.environ.get("SB3_NPG_TEST_TORCH", "torch==2.13.0")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        reason = f"{module} is not installed: pip install build twine"
        if in_ci():
            pytest.fail(f"{reason}; CI=true, so the release tests must run (.ci/run installs them)")
        pytest.skip(reason)


def run(command: list[str], timeout: int = 900, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist and the wheel, built from the source tree into a temporary folder."""
    need("build")
    out = tmp_path_factory.mktemp("dist")
    # One build at a time: pytest-xdist's workers each build, and the build writes into the source tree
    with FileLock(str(tmp_path_factory.getbasetemp().parent / "sb3_npg_build.lock")):
        run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)])
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def test_twine_check(dist: dict[str, Path]):
    need("twine")
    result = run([sys.executable, "-m", "twine", "check", "--strict", str(dist["sdist"]), str(dist["wheel"])])
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_wheel_carries_the_package_data(dist: dict[str, Path]):
    assert dist["wheel"].name == f"sb3_npg-{sb3_npg.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        names = set(wheel.namelist())
        metadata = email.parser.Parser().parsestr(wheel.read(f"sb3_npg-{sb3_npg.__version__}.dist-info/METADATA").decode())
    assert "sb3_npg/py.typed" in names
    shipped = sorted(Path(name).name for name in names if name.startswith("sb3_npg/zoo/hyperparams/"))
    assert shipped == HYPERPARAMS
    assert not [name for name in names if name.startswith(("tests/", "benchmarks/", "docs/"))]
    requires = metadata.get_all("Requires-Dist") or []
    assert "stable-baselines3<3.0,>=2.7.0" in requires, requires
    assert metadata["Version"] == sb3_npg.__version__


def test_sdist_carries_the_sources(dist: dict[str, Path]):
    with tarfile.open(dist["sdist"]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "LICENSE", "sb3_npg/py.typed"} <= names
    assert {f"sb3_npg/zoo/hyperparams/{name}" for name in HYPERPARAMS} <= names


def quick_start() -> tuple[str, str]:
    """The README's first Python block with a budget of one rollout, and the extras it says it needs."""
    readme = (ROOT / "README.md").read_text()
    block = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)[0]
    extras = re.findall(r'pip install "sb3-npg\[([\w,-]+)\]"', block)
    return re.sub(r"\.learn\((total_timesteps=)?[\d_]+", r".learn(\g<1>64", block), extras[0] if extras else ""


def test_quick_start_from_the_wheel_in_a_fresh_venv(dist: dict[str, Path], tmp_path: Path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True, system_site_packages=False, clear=True)
    python = env_dir / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run([*pip, TORCH])
    code, extras = quick_start()
    run([*pip, f"{dist['wheel']}[{extras}]" if extras else str(dist["wheel"])])

    # From a folder outside the tree, in isolated mode (no current folder or PYTHON* variables on sys.path)
    work = tmp_path / "user"
    work.mkdir()
    (work / "quick_start.py").write_text(code + "\nimport sb3_npg\nprint('sb3_npg from', sb3_npg.__file__)\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    result = run([str(python), "-I", "quick_start.py"], cwd=work, env=env, timeout=600)
    location = Path(result.stdout.rsplit("sb3_npg from ", 1)[1].strip())
    assert location.is_relative_to(env_dir), f"sb3_npg was imported from {location}, not from the fresh environment"
    assert (work / "npg_pendulum.zip").is_file()  # the quick start saved its model there

    # The shipped hyperparameter files are found from the installed package
    check = "from sb3_npg.zoo.config import load_hyperparams; print(load_hyperparams('npg', 'CartPole-v1'))"
    run([str(python), "-I", "-c", check], cwd=work, env=env)
