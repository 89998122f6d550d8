"""The documentation builds: the real Sphinx build of docs/ with warnings as errors.

Skipped where Sphinx and the docs extras are not installed (``pip install ".[docs]"``) or
there is no docs/ folder (the wheel tests run from a copy of tests/ alone).  The build runs
on a copy of docs/ in a temporary folder, so the gallery, the API pages and the figures it
generates never land in the checkout; it takes about half a minute on two cores.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fastloss

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GENERATED = ("_build", "auto_examples", "api", "_generated", "sg_execution_times.rst")

for _module in ("sphinx", "numpydoc", "sphinx_gallery", "pydata_sphinx_theme", "matplotlib"):
    pytest.importorskip(_module, reason="the docs extras are not installed")
if not (DOCS / "conf.py").exists():
    pytest.skip("no docs/ folder next to the tests", allow_module_level=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the site once (warnings are errors); yield its HTML folder."""
    tmp = tmp_path_factory.mktemp("docs")
    shutil.copytree(DOCS, tmp / "docs", ignore=shutil.ignore_patterns(*GENERATED))
    conf = (DOCS / "conf.py").read_text(encoding="utf-8")
    results = re.search(r'^fastloss_bench_results = "([^"]+)"', conf, re.M).group(1)
    src = (DOCS / results).resolve()
    dest = tmp / "docs" / results
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dest)
    html = tmp / "html"
    env = dict(os.environ, MPLBACKEND="agg",
               PYTHONPATH=os.pathsep.join([str(Path(fastloss.__file__).parent.parent),
                                           os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html",
                           str(tmp / "docs"), str(html)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, f"the docs build failed:\n{proc.stdout}\n{proc.stderr}"
    return html


def test_every_page_is_there(site):
    for page in ("index", "guide/regression", "guide/classification", "guide/distributions",
                 "auto_examples/index", "api/index", "performance", "contract"):
        assert (site / f"{page}.html").is_file(), page
    for cls in fastloss.LOSSES:                     # a new row of the table gets its page
        page = (site / "api" / f"fastloss.{cls.__name__}.html").read_text(encoding="utf-8")
        assert f'id="fastloss.{cls.name}"' in page
        assert "value_and_grad" in page and "Examples" in page


def test_gallery_has_figures_made_by_fastloss(site):
    figures = sorted((site / "_images").glob("sphx_glr_plot_*_0*.png"))
    assert len(figures) >= 8, [f.name for f in figures]
    for script in (DOCS / "examples").glob("plot_*.py"):
        assert "import fastloss" in script.read_text(encoding="utf-8"), script.name


def test_contract_is_included_not_copied(site):
    """docs/contract.md is the one source (the tests cite it): the page shows it, and no
    other file of docs/ holds its text."""
    page = (site / "contract.html").read_text(encoding="utf-8")
    first = "This is the behaviour users and downstream libraries rely on"
    assert first in page and "Memory safety" in page
    copies = [p for p in DOCS.rglob("*") if p.is_file() and p.name != "contract.md"
              and not set(p.relative_to(DOCS).parts) & set(GENERATED)
              and first in p.read_text(encoding="utf-8", errors="replace")]
    assert not copies


def test_no_page_links_outside_the_site(site):
    """No link, image, script or style sheet is fetched from elsewhere."""
    external = re.compile(r'(?:href|src)="(?:https?:)?//', re.I)
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert not external.search(text), f"{page.relative_to(site)} links outside the site"


def _bench_results_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_results",
                                                  DOCS / "_ext" / "bench_results.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module                 # its dataclasses look it up there
    spec.loader.exec_module(module)
    return module


def test_docs_results_file_has_thread_scaling():
    """The performance page's thread-scaling figure is drawn from the results file that
    docs/conf.py names: it must hold a scaling section (a run without --no-scaling), or
    the page shows empty axes."""
    conf = (DOCS / "conf.py").read_text(encoding="utf-8")
    rel = re.search(r'^fastloss_bench_results = "([^"]+)"', conf, re.M).group(1)
    results = _bench_results_module().load_results((DOCS / rel).resolve(), rel)
    assert results.scaling, f"{rel} has no thread-scaling section"
    assert all(len(s.threads) >= 2 for s in results.scaling)


def test_scaling_figure_without_scaling_says_so(recwarn):
    """A results file without a scaling section draws a note, not empty axes (and no
    matplotlib warning about an empty legend)."""
    import matplotlib
    matplotlib.use("agg")
    import matplotlib.pyplot as plt
    br = _bench_results_module()
    old = ROOT / "bench" / "results" / "2026-12-01-epyc2-quick.json"
    if not old.is_file():
        pytest.skip("no bench/results next to the tests")
    results = br.load_results(old, old.name)
    assert not results.scaling
    fig = br.plot_scaling(results)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    plt.close(fig)
    assert texts and all("no thread-scaling" in t for t in texts), texts
    assert not [w for w in recwarn if "legend" in str(w.message)]
