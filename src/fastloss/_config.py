"""fastloss.show_config(): what this installation was built with and what it runs on."""
from __future__ import annotations

import json
import os
import sys

import numpy


def _openmp_runtime() -> str | None:
    """Path of the OpenMP runtime fastloss uses: the copy a wheel vendors (next to the
    package) if one is loaded, else the first one loaded in this process."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = []
    try:
        from threadpoolctl import threadpool_info
        paths = [i["filepath"] for i in threadpool_info() if i.get("user_api") == "openmp"]
    except Exception:       # threadpoolctl is optional; fall back to the loader's map
        try:
            with open("/proc/self/maps") as maps:
                for line in maps:
                    path = line.split()[-1]
                    if os.path.basename(path).startswith(("libgomp", "libomp", "libiomp", "vcomp")):
                        paths.append(path)
        except OSError:
            pass
    ours = [p for p in paths if os.path.abspath(p).startswith(here + os.sep + "fastloss")]
    return (ours or paths or [None])[0]


def config() -> dict:
    """The facts show_config() prints, as a dict."""
    from . import __version__, _dispatch
    from ._kernels import cpu
    build = json.loads(cpu.build_info())
    return {
        "version": __version__,
        "openmp": bool(cpu.openmp_version()),
        "openmp_version": cpu.openmp_version(),
        "openmp_runtime": _openmp_runtime(),
        "simd": _dispatch.kernels.level,
        "simd_available": list(_dispatch.available()),
        "simd_forced": os.environ.get("FASTLOSS_SIMD") or None,
        "default_threads": cpu.max_threads(),
        "cores": cpu.num_procs() if cpu.openmp_version() else os.cpu_count(),
        "compiler": build.get("compiler_version") or build.get("compiler"),
        "cflags": build.get("cflags"),
        "simd_flags": build.get("levels"),
        "openmp_flags": build.get("openmp_flags"),
        "target": build.get("target"),
        "built_with": {"python": build.get("python"), "numpy": build.get("numpy_build")},
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
    }


def show_config(file=None) -> dict:
    """Print how fastloss was built and what it runs on; return the same as a dict.

    A good installation shows ``openmp: True`` with a runtime path, and ``simd`` naming the
    best level this CPU supports (``avx2`` or ``avx512`` on a modern x86-64 machine).

    >>> import fastloss
    >>> info = fastloss.show_config(file=open(os.devnull, "w"))
    >>> info["simd"] in info["simd_available"]
    True
    """
    info = config()
    out = file or sys.stdout
    width = max(map(len, info))
    for key, value in info.items():
        print(f"{key:>{width}}: {value}", file=out)
    return info
