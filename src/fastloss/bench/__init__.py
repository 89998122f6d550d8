"""fastloss's benchmark suite and the reference implementations it and the tests use.

Tooling, not part of the losses: nothing in fastloss imports it.  ``python -m fastloss
bench`` runs the suite; from Python::

    from fastloss.bench import BenchConfig, run
    results = run(BenchConfig(preset="quick"), out=None)      # the JSON-serialisable dict

One module per concern:

* ``reference``: independent NumPy and PyTorch references of every loss, and example data;
* ``cases``: which cases run, read from the table of losses, and the presets' sizes;
* ``peers``: the candidates of a case (fastloss, PyTorch, sklearn._loss, NumPy, floors);
* ``measure``: interleaved timing, calibration, medians, other processes' CPU use;
* ``report``: the tables and the progress bar (rich);
* ``suite``: ``run``, ``BenchConfig``, ``write_json`` and the results' layout (``SCHEMA``).

Importing this package imports none of them; ``run`` and the other names below load
``suite`` on first use.
"""
_SUITE = ("BenchConfig", "SCHEMA", "run", "write_json", "machine_info")

__all__ = list(_SUITE)


def __getattr__(name):
    if name in _SUITE:
        from . import suite
        return getattr(suite, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
