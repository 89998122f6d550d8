"""fastloss.show_config(): what this installation was built with and runs on."""
from __future__ import annotations

import json
import sys


def show_config(file=None) -> dict:
    from . import _dispatch
    from ._kernels import cpu
    BUILD_INFO = json.loads(cpu.build_info())
    info = {
        "openmp": bool(cpu.openmp_version()),
        "simd": _dispatch.kernels.level,
        "simd_available": list(_dispatch.available()),
        "default_threads": cpu.max_threads(),
        "cores": cpu.num_procs(),
        **BUILD_INFO,
    }
    print(info, file=file or sys.stdout)
    return info
