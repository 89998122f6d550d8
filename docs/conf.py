"""Sphinx configuration of fastloss's documentation.

Build it with ``python -m sphinx -W -b html docs docs/_build/html`` (README.md).  Nothing is
fetched from the network: no intersphinx, formulas drawn by Matplotlib (_ext/mathtext_math.py),
the theme's own assets only.  Generated at build time, never committed: the gallery
(``auto_examples/``, from ``examples/plot_*.py``), the API pages (``api/``, from fastloss's
public names) and the performance figures (``_generated/``, from a benchmark results file).
"""
import importlib.util
import re
import sys
import warnings
from pathlib import Path

import fastloss

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

project = "fastloss"
author = "the fastloss developers"
copyright = "the fastloss developers, BSD-3-Clause"
version = release = fastloss.__version__

extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "mathtext_math",            # _ext/: formulas without MathJax or LaTeX
    "markdown_include",         # _ext/: docs/contract.md as a page
    "api_pages",                # _ext/: api/*.rst from fastloss.__all__ and LOSSES
    "bench_results",            # _ext/: the performance page's figures and tables
]

exclude_patterns = ["_build", "examples", "**.ipynb_checkpoints", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip"]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
# Every cross-reference must resolve inside these docs (name outside things as ``text``).
nitpicky = True

# ---------------------------------------------------------------- Python objects ----
autodoc_typehints = "none"              # signatures as written; types are in the docstrings
autodoc_member_order = "bysource"
autodoc_default_options = {"no-value": True}
#: optional dependencies of integration modules: mocked when not installed, so that their
#: pages build anyway (api_pages.py imports every public module)
OPTIONAL = ["torch", "xgboost", "lightgbm", "dask", "distributed", "sklearn", "threadpoolctl",
            "scipy", "pandas"]
autodoc_mock_imports = [m for m in OPTIONAL if importlib.util.find_spec(m) is None]
numpydoc_show_class_members = False     # members are listed by autodoc's :members:
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()
# numpydoc drops a docstring section it does not know (e.g. "Example" for "Examples") with
# only a Python warning; make that an error, like every Sphinx warning here.
warnings.filterwarnings("error", message=r"Unknown section", category=UserWarning)
warnings.filterwarnings("error", message=r"Could not render math", category=UserWarning)

# ---------------------------------------------------------------- math ----
html_math_renderer = "mathtext"
mathtext_fontsize = 12.0


# ---------------------------------------------------------------- the gallery ----
def requirements_missing(folder):
    """Gallery scripts whose ``# docs-requires: torch, xgboost`` line names a module that is
    not installed (CONTRIBUTING.md, "Documentation"): skipped, as a regex for
    sphinx-gallery's ignore_pattern."""
    skipped = []
    for script in sorted(Path(folder).glob("plot_*.py")):
        m = re.search(r"^# docs-requires:(.*)$", script.read_text(encoding="utf-8"), re.M)
        needs = [n.strip() for n in m.group(1).split(",") if n.strip()] if m else []
        if any(importlib.util.find_spec(n) is None for n in needs):
            print(f"docs: skipping {script.name}: needs {', '.join(needs)}", file=sys.stderr)
            skipped.append(re.escape(script.name))
    return "|".join([r"__init__\.py"] + skipped)


sphinx_gallery_conf = {
    "examples_dirs": ["examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "ignore_pattern": requirements_missing(HERE / "examples"),
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "show_signature": False,            # no link to the sphinx-gallery site
    "show_memory": False,
    "write_computation_times": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_srcset": [],
    "min_reported_time": 1e9,           # no "Total running time" footers (they vary)
    "plot_gallery": "True",
    "capture_repr": (),
    "first_notebook_cell": None,
}

# ---------------------------------------------------------------- performance page ----
#: the benchmark results the performance page plots (written by python -m fastloss bench)
fastloss_bench_results = "../bench/results/2026-12-03-zen4-quick.json"

# ---------------------------------------------------------------- HTML ----
html_theme = "pydata_sphinx_theme"
html_title = f"fastloss {release}"
html_theme_options = {
    "navbar_end": ["navbar-icon-links"],        # no theme switcher: figures are light
    "footer_start": ["copyright"],
    "footer_center": [],
    "footer_end": [],                           # no links to the theme's or Sphinx's sites
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "icon_links": [],
    "secondary_sidebar_items": ["page-toc"],
    "show_prev_next": True,
}
html_context = {"default_mode": "light"}
html_sidebars = {"index": [], "performance": [], "contract": []}   # pages without sections
html_static_path = ["_static"]
html_css_files = ["fastloss.css"]
html_show_sphinx = False
html_show_sourcelink = False
html_copy_source = False
html_last_updated_fmt = None
autodoc_inherit_docstrings = False      # third-party bases (torch.nn) link to pages not here
