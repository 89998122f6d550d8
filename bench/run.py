#!/usr/bin/env python3
"""Run the fastloss benchmark suite from a source checkout.

    python bench/run.py [--quick] [--threads N] [--json PATH] [--dtype ...] [--losses ...]

is ``python -m fastloss bench [args]``, except that the JSON results go to
``bench/results/<date>-<time>-<preset>.json`` unless ``--json`` says otherwise, and that
the BLAS pools are limited to one thread through the environment before NumPy loads (the
suite also does so with threadpoolctl when it is installed).  See bench/README.md.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

# Before NumPy is imported: idle BLAS threads must not compete with the kernels.
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

RESULTS = Path(__file__).resolve().parent / "results"


def _default_json(argv: list[str]) -> list[str]:
    """argv plus ``--json bench/results/...`` unless it names a path or asks for help."""
    if any(a in ("-h", "--help", "--json") or a.startswith("--json=") for a in argv):
        return argv
    preset = "quick" if "--quick" in argv else "smoke" if "--smoke" in argv else "full"
    return [*argv, "--json", str(RESULTS / f"{time.strftime('%Y%m%d-%H%M%S')}-{preset}.json")]


def main(argv: list[str] | None = None) -> int:
    try:
        from fastloss.__main__ import main as fastloss_main
    except ImportError:         # not installed: use the in-place build of this checkout
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
        from fastloss.__main__ import main as fastloss_main
    return fastloss_main(["bench", *_default_json(list(sys.argv[1:] if argv is None else argv))])


if __name__ == "__main__":
    sys.exit(main())
