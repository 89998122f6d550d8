"""Write the API reference's pages (``docs/api/``, generated, not committed) from the package.

Nothing lists fastloss's public names here: the pages follow ``fastloss.__all__``, the loss
table ``fastloss.LOSSES`` and the public submodules, so a new loss, function or module has
its page as soon as it exists.

* one page per loss of the table: the class (formula, gradient, Hessian, parameters,
  example) with its three methods, and its one-line function (``fastloss.<name>``);
* one page per other public class or function of ``fastloss``;
* one page per public submodule (``fastloss.<module>``, no leading underscore, not in
  ``SKIP_MODULES``), listing its ``__all__``;
* ``api/index.rst``: a table of every loss, then the other names and the modules.

A submodule whose optional dependency (PyTorch, XGBoost, ...) is not installed is imported
with that dependency mocked (``autodoc_mock_imports`` in conf.py), so its page is built
anyway.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

#: public submodules without a page of their own, and why
SKIP_MODULES = {
    "losses": "its names are fastloss's own (fastloss.MSE, ...), documented there",
    "accumulate": "its one class is fastloss's own (fastloss.Accumulator), documented there",
    "linear": "its one class is fastloss's own (fastloss.LinearCrossEntropy), documented there",
    "bench": "reference implementations for the tests and the benchmark suite",
}
FOLDER = "api"


def _summary(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ") if doc else ""


def _title(text: str, char: str = "=") -> list[str]:
    return [text, char * len(text), ""]


def public_modules(package) -> list[str]:
    return sorted(f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)
                  if not m.name.startswith("_") and m.name not in SKIP_MODULES)


#: the methods every loss has, in the order the pages show them
METHODS = ("__call__", "value_and_grad", "grad_hess", "get_params")


def _methods(cls) -> list[str]:
    lines = []
    for name in METHODS:
        lines += [f"   .. automethod:: {cls.__name__}.{name}", ""]
    return lines


def loss_page(cls, functional) -> list[str]:
    lines = [".. currentmodule:: fastloss", ""] + _title(f"fastloss.{cls.__name__}")
    lines += [f".. autoclass:: {cls.__name__}", ""] + _methods(cls)
    if functional is not None:
        lines += _title(f"fastloss.{functional.__name__}", "-")
        lines += [f".. autofunction:: {functional.__name__}", ""]
    return lines


def module_page(name: str, mock_imports=()) -> list[str]:
    """A public submodule: its docstring and every name of its ``__all__``.  (autodoc's
    ``:members:`` leaves out data without a doc comment, so data get autodata entries.)"""
    from sphinx.ext.autodoc.mock import mock

    with mock(list(mock_imports)):
        module = importlib.import_module(name)
    lines = _title(name) + [f".. automodule:: {name}", "   :members:", "   :undoc-members:", ""]
    for member in getattr(module, "__all__", ()):
        obj = getattr(module, member)
        if not (inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj)):
            lines += [f".. autodata:: {name}.{member}", "   :no-value:", ""]
    return lines


def write_pages(srcdir: Path, mock_imports=()) -> list[str]:
    """Write every page under srcdir/api; return the documents written (without suffix).
    `mock_imports`: optional dependencies that are not installed (mocked while importing)."""
    import fastloss
    from sphinx.ext.autodoc.mock import mock

    out = srcdir / FOLDER
    out.mkdir(exist_ok=True)
    pages: dict[str, list[str]] = {}
    rows = list(fastloss.LOSSES)
    row_names = {cls.__name__ for cls in rows} | {cls.name for cls in rows}
    others = [n for n in fastloss.__all__ if n not in row_names]

    for cls in rows:
        pages[f"fastloss.{cls.__name__}"] = loss_page(cls, getattr(fastloss, cls.name, None))

    data = []
    for name in others:
        obj = getattr(fastloss, name)
        if inspect.isclass(obj):
            pages[f"fastloss.{name}"] = (
                [".. currentmodule:: fastloss", ""] + _title(f"fastloss.{name}")
                + ([f".. autoclass:: {name}", ""] + _methods(obj)
                   if issubclass(obj, fastloss.Loss) else
                   [f".. autoclass:: {name}", "   :members:"]
                   + (["   :special-members: __call__"] if "__call__" in vars(obj) else [])
                   + [""]))
        elif callable(obj):
            pages[f"fastloss.{name}"] = ([".. currentmodule:: fastloss", ""]
                                         + _title(f"fastloss.{name}")
                                         + [f".. autofunction:: {name}", ""])
        else:
            data.append(name)

    modules = public_modules(fastloss)
    for mod in modules:
        pages[mod] = module_page(mod, mock_imports)

    index = _title("API reference") + [
        "Everything public in fastloss, generated from the docstrings.  The examples in",
        "the docstrings run as tests (``tests/test_api.py``).", "",
        ".. currentmodule:: fastloss", ""]
    index += _title("The losses", "-") + [
        "One row per entry of :data:`fastloss.LOSSES`.  Each loss is a class with the",
        "methods of :class:`~fastloss.Loss`, and a function (in lower case) that returns its",
        "value in one line.", "",
        ".. list-table::", "   :header-rows: 1", "   :widths: 30 25 45", "",
        "   * - class and function", "     - parameters", "     - summary"]
    for cls in rows:
        params = ", ".join(f"``{p.name}={p.default!r}``" for p in cls.params) or "none"
        index += [f"   * - :class:`{cls.__name__}`, :func:`{cls.name}`",
                  f"     - {params}", f"     - {_summary(cls)}"]
    index += [""]
    other_pages = [n for n in others if f"fastloss.{n}" in pages]
    if other_pages:
        index += _title("Other classes and functions", "-") + [".. list-table::", ""]
        for name in other_pages:
            obj = getattr(fastloss, name)
            role = "class" if inspect.isclass(obj) else "func"
            index += [f"   * - :{role}:`{name}`", f"     - {_summary(obj)}"]
        index += [""]
    if data:
        index += _title("Data", "-")
        for name in data:
            value = getattr(fastloss, name)
            if name == "LOSSES":
                index += [".. data:: LOSSES", "",
                          "   The table of losses: the classes above, in this order.  Every",
                          "   loss-generic test, the benchmark suite and the integrations",
                          "   iterate over it.", ""]
            else:
                index += [f".. data:: {name}", f"   :value: {value!r}", ""]
    if modules:
        index += _title("Modules", "-") + [".. list-table::", ""]
        for mod in modules:
            with mock(list(mock_imports)):
                summary = _summary(importlib.import_module(mod))
            index += [f"   * - :mod:`{mod}`", f"     - {summary}"]
        index += [""]
    index += [".. toctree::", "   :hidden:", ""] + [f"   {p}" for p in pages] + [""]
    pages["index"] = index

    keep = {f"{p}.rst" for p in pages}
    for old in out.glob("*.rst"):               # pages of names that no longer exist
        if old.name not in keep:
            old.unlink()
    for page, lines in pages.items():
        path = out / f"{page}.rst"
        text = "\n".join(lines) + "\n"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")     # unchanged pages keep their time stamp
    return [f"{FOLDER}/{p}" for p in pages]


def _on_builder_inited(app):
    write_pages(Path(app.srcdir), app.config.autodoc_mock_imports)


def setup(app):
    app.connect("builder-inited", _on_builder_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
