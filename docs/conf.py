"""
Sphinx configuration of the sb3-npg documentation (MyST Markdown, as sb3-contrib's documentation).

Build it with ``make docs`` (warnings are errors, and every cross-reference into ``sb3_npg`` must resolve).
"""

import datetime
import os
import sys

# The package documented is the one of this source tree, whatever else is installed
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

from sb3_npg.version import __version__  # noqa: E402

# -- Project information -----------------------------------------------------

project = "sb3-npg"
copyright = f"2026-{datetime.date.today().year}, sb3-npg contributors"
author = "sb3-npg contributors"
version = __version__
release = __version__

# -- General configuration ---------------------------------------------------

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
try:
    import sphinx_copybutton  # noqa: F401

    extensions.append("sphinx_copybutton")
except ImportError:
    pass

source_suffix = {".md": "markdown"}
root_doc = "index"
language = "en"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
pygments_style = "sphinx"

# MyST: headings get anchors (links to sections of a page, [text](page.md#a-heading)), $...$ math, ::: fences
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 4

# autodoc: the signatures are the code's own, the types go into the parameter list
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"show-inheritance": True}
autosummary_generate = False

# Nitpicky: every reference into sb3_npg must resolve. The documentation bundles no inventory of the
# projects it builds on (the build runs offline), so references to them (torch, numpy, gymnasium,
# Stable-Baselines3, sb3-contrib, rl-zoo3, Optuna) and to Python's builtins are left unresolved.
nitpicky = True
# Inside sb3_npg, type variables (SelfNPG, SamplesT, ...) and private helpers (a return type such as
# KLPPO.minibatch_loss's _MinibatchLoss) have no page of their own either.
nitpick_ignore_regex = [
    (r"py:.*", r"(?!sb3_npg\b).*"),
    (r"py:class", r"sb3_npg\.[\w.]*\.(Self\w+|\w+T|_\w+)"),
]

# -- Options for HTML output -------------------------------------------------

html_theme = "sphinx_rtd_theme"
html_title = f"sb3-npg {release}"
html_static_path = ["_static"]
html_css_files = ["css/custom.css"]
html_show_sourcelink = False
