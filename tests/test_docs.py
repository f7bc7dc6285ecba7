"""
The documentation site: it builds with no warning, every public object has its docstring on a page, the pages'
Python blocks run, and the algorithm pages, opened in headless Chromium, show their parameters and results.

The build needs the docs extra (``pip install -e ".[docs]"``), the browser tests Debian's ``chromium`` package
(``apt-get install chromium``). Without them the tests are skipped, saying what to install; under ``CI=true``
they fail instead, since ``.ci/run`` installs both. Screenshots of the algorithm pages go to
``$SB3_NPG_DOCS_SCREENSHOTS`` (default ``docs/_build/screenshots``).
"""

import html
import importlib
import inspect
import json
import os
import pkgutil
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import filelock
import pytest

import sb3_npg

pytestmark = pytest.mark.docs

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SCREENSHOTS = Path(os.environ.get("SB3_NPG_DOCS_SCREENSHOTS", DOCS / "_build" / "screenshots"))
# The algorithm pages: page name, the class its Parameters section documents
ALGORITHM_PAGES = {
    "npg": "NPG",
    "klppo": "KLPPO",
    "npg_recurrent": "RecurrentNPG",
    "klppo_recurrent": "RecurrentKLPPO",
}
# Modules whose public objects the API reference must show (the version module has nothing to document)
UNDOCUMENTED_MODULES = {"sb3_npg.version", "sb3_npg.__main__"}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """A failure under CI (the documentation's tests must run there), else a skip saying what to install."""
    if in_ci():
        pytest.fail(f"{reason}; CI=true, so the documentation's tests must run (.ci/run installs what they need)")
    pytest.skip(reason)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    unavailable("headless Chromium is not installed: apt-get install chromium")
    raise AssertionError  # unreachable: unavailable() skips or fails


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built from docs/ with warnings as errors and nitpicky references, in a temporary folder.

    Built once per test session: pytest-xdist's workers share one build (the first one to get the lock builds).
    """
    for module in ("sphinx", "myst_parser", "sphinx_rtd_theme"):
        try:
            importlib.import_module(module)
        except ImportError:
            unavailable(f"{module} is not installed: pip install -e '.[docs]'")
    under_xdist = "PYTEST_XDIST_WORKER" in os.environ
    shared = tmp_path_factory.getbasetemp().parent if under_xdist else tmp_path_factory.getbasetemp()
    out, report = shared / "docs", shared / "docs-build.txt"
    with filelock.FileLock(str(shared / "docs.lock")):
        if not report.exists():
            command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html"]
            command += ["-d", str(out / "doctrees"), str(DOCS), str(out / "html")]
            result = subprocess.run(command, capture_output=True, text=True, timeout=600)
            report.write_text(json.dumps({"returncode": result.returncode, "output": result.stdout + result.stderr}))
    build = json.loads(report.read_text())
    assert build["returncode"] == 0, f"the documentation does not build cleanly:\n{build['output']}"
    assert build["output"].strip() == "", f"the build printed warnings:\n{build['output']}"
    return out / "html"


def test_builds_without_warnings(site: Path):
    assert (site / "index.html").is_file()
    for page in ALGORITHM_PAGES:
        assert (site / "modules" / f"{page}.html").is_file()
    assert (site / "misc" / "changelog.html").is_file()


def public_objects() -> list[tuple[str, object]]:
    """Every public class and function that a module of sb3_npg defines (not the ones it imports)."""
    objects: list[tuple[str, object]] = []
    for info in pkgutil.walk_packages(sb3_npg.__path__, "sb3_npg."):
        if info.name in UNDOCUMENTED_MODULES:
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if name.startswith("_") or not (inspect.isclass(value) or inspect.isfunction(value)):
                continue
            if getattr(value, "__module__", None) == info.name:
                objects.append((f"{info.name}.{name}", value))
    return objects


def documented_ids(site: Path) -> set[str]:
    ids: set[str] = set()
    for page in site.rglob("*.html"):
        if "_modules" not in page.parts:  # viewcode's source pages are not documentation
            ids.update(re.findall(r'<dt class="sig sig-object py" id="([^"]+)"', page.read_text()))
    return ids


def test_every_public_object_is_documented(site: Path):
    objects = public_objects()
    assert len(objects) > 50  # the walk found the package
    missing_docstring = [name for name, value in objects if not inspect.getdoc(value)]
    assert not missing_docstring, f"public objects without a docstring: {missing_docstring}"
    ids = documented_ids(site)
    # The algorithms are documented under the names users import them by (sb3_npg.NPG, ...)
    aliases = {f"sb3_npg.{module}.{module}.{name}": f"sb3_npg.{name}" for module, name in ALGORITHM_PAGES.items()}
    not_rendered = [name for name, _ in objects if name not in ids and aliases.get(name) not in ids]
    assert not not_rendered, f"public objects with no entry in the API reference: {not_rendered}"


# -- The pages' code blocks ------------------------------------------------------------------------------------


def python_blocks(page: Path) -> list[str]:
    """The page's ```python blocks (```{code-block} python ones are shown, not run)."""
    return re.findall(r"^```python\n(.*?)^```", page.read_text(), flags=re.DOTALL | re.MULTILINE)


def pages_with_code() -> list[Path]:
    return sorted(page for page in DOCS.rglob("*.md") if "_build" not in page.parts and python_blocks(page))


def shrink_budget(code: str) -> str:
    """Training budgets cut to 64 steps (one rollout): ``learn(100_000``, ``learn(total_timesteps=100_000``, ``learn(n)``."""
    return re.sub(r"\.learn\((total_timesteps=)?\w+", r".learn(\g<1>64", code)


@pytest.mark.parametrize("page", pages_with_code(), ids=lambda page: str(page.relative_to(DOCS)))
def test_code_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for module, extra in (("rl_zoo3", "zoo"), ("sb3_contrib", "recurrent"), ("tensorboard", "extra"), ("tqdm", "extra")):
        if module in page.read_text() or (extra == "extra" and "tensorboard_log" in page.read_text()):
            pytest.importorskip(module, reason=f"{page.name}'s examples need pip install 'sb3-npg[{extra}]'")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for index, block in enumerate(python_blocks(page)):
        code = shrink_budget(block)
        exec(compile(code, f"{page.relative_to(DOCS)} (python block {index + 1})", "exec"), namespace)


def test_budget_shrinking():
    assert shrink_budget("model.learn(total_timesteps=100_000)") == "model.learn(total_timesteps=64)"
    assert shrink_budget("NPG(...).learn(50_000)\nmodel.learn(n_timesteps, progress_bar=True)") == (
        "NPG(...).learn(64)\nmodel.learn(64, progress_bar=True)"
    )


# -- The algorithm pages in a browser -----------------------------------------------------------------------------

# Run in the page once it has loaded: how the browser laid out the parameter list and whether it decoded each
# image, written into the DOM, which --dump-dom then prints
PROBE = r"""
<script>
window.addEventListener("load", () => {
  const report = {images: [], parameters: []};
  const section = (title) => [...document.querySelectorAll("section")].find(
    (s) => s.querySelector(":scope > h2")?.textContent.replace(/\W+$/, "") === title);
  for (const img of section("Results")?.querySelectorAll("img") ?? []) {
    report.images.push({src: img.getAttribute("src"), width: img.naturalWidth, shown: img.getBoundingClientRect().width});
  }
  for (const dl of section("Parameters")?.querySelectorAll(":scope > dl.py.class") ?? []) {
    const box = dl.getBoundingClientRect();
    const names = [...dl.querySelectorAll(":scope > dd > dl.field-list > dd strong")].map((e) => e.textContent);
    report.parameters.push({id: dl.querySelector(":scope > dt").id, height: box.height, names: names,
                            visible: getComputedStyle(dl).display !== "none"});
  }
  const out = document.createElement("pre");
  out.id = "sb3-npg-probe";
  out.textContent = JSON.stringify(report);
  document.body.appendChild(out);
});
</script>
"""
# The focused view of a page: the title, then its Parameters section, in the theme's own layout
PARAMETERS_VIEW = "<style>section > section:not(#parameters) { display: none; }</style>"

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--allow-file-access-from-files",
    "--run-all-compositor-stages-before-draw",
    "--virtual-time-budget=10000",
]


def run_chromium(tmp_path: Path, *args: str) -> str:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"  # a new empty profile every run
    profile.mkdir()
    command = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"chromium failed:\n{result.stderr[-3000:]}"
    return result.stdout


def variant(page: Path, name: str, extra_head: str) -> Path:
    """A copy of a built page, beside it (so that its links and images resolve), with something added to its head."""
    copy = page.with_name(f"{page.stem}.{name}.html")
    copy.write_text(page.read_text().replace("</head>", extra_head + "</head>", 1))
    return copy


def png_size_and_colours(path: Path) -> tuple[int, int, int]:
    """Width, height and the number of distinct bytes of the decoded rows: a blank screenshot has very few."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    chunks, offset = [], 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if kind == b"IDAT":
            chunks.append(data[offset + 8 : offset + 8 + length])
        offset += 12 + length
    pixels = zlib.decompress(b"".join(chunks))
    return width, height, len(set(pixels[: 4 * 1024 * 1024]))


def init_parameters(class_name: str) -> list[str]:
    cls = getattr(sb3_npg, class_name)
    names = [name for name in inspect.signature(cls.__init__).parameters if name not in ("self", "args", "kwargs")]
    return [name for name in names if not name.startswith("_")]


@pytest.mark.parametrize("page_name", list(ALGORITHM_PAGES))
def test_algorithm_page_in_browser(site: Path, tmp_path: Path, page_name: str):
    if page_name.endswith("recurrent"):
        pytest.importorskip("sb3_contrib", reason="the recurrent classes need pip install 'sb3-npg[recurrent]'")
    page = site / "modules" / f"{page_name}.html"
    probe = variant(page, "probe", PROBE)
    dom = run_chromium(tmp_path, "--dump-dom", probe.as_uri())
    found = re.search(r'<pre id="sb3-npg-probe">(.*?)</pre>', dom, flags=re.DOTALL)
    assert found, "the probe did not run: the page did not finish loading"
    report = json.loads(html.unescape(found.group(1)))

    # The results: every figure decoded by the browser and shown
    assert len(report["images"]) >= 1, "no results figure on the page"
    for image in report["images"]:
        assert image["width"] > 0, f"the browser could not load {image['src']}"
        assert image["shown"] > 100, f"{image['src']} is laid out {image['shown']} px wide"

    # The parameters: the class's entry is laid out, and lists every argument of its constructor
    class_name = ALGORITHM_PAGES[page_name]
    entries = {entry["id"]: entry for entry in report["parameters"]}
    entry = entries.get(f"sb3_npg.{class_name}")
    assert entry, f"no entry of sb3_npg.{class_name} in the Parameters section (found {list(entries)})"
    assert entry["visible"] and entry["height"] > 500, entry
    expected = init_parameters(class_name)
    assert "target_kl" in expected
    missing = [name for name in expected if name not in entry["names"]]
    assert not missing, f"the parameter list of {class_name} lacks {missing}"

    # Screenshots a person can look at: the top of the page, and its Parameters section
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shots = {
        SCREENSHOTS / f"{page_name}.png": page,
        SCREENSHOTS / f"{page_name}_parameters.png": variant(page, "parameters", PARAMETERS_VIEW),
    }
    for shot, source in shots.items():
        shot.unlink(missing_ok=True)
        run_chromium(tmp_path, "--window-size=1280,1800", f"--screenshot={shot}", source.as_uri())
        width, height, colours = png_size_and_colours(shot)
        assert (width, height) == (1280, 1800), (shot, width, height)
        assert colours > 20, f"{shot} looks blank"
