#!/usr/bin/env python3
"""Background load for the shared-machine benchmark: short multi-threaded OpenMP calls in
a loop, as another evaluation worker or a PyTorch job makes them.

    python tools/omp_load.py [--kind c|fastloss|torch] [--threads 2] [--size 65536]
                             [--seconds S] [--pause-us 0]

Each kind runs the same pattern in its own process: a call that splits `size` elements
over `threads` OpenMP threads (a few tens of microseconds), then the next one, with
`pause-us` microseconds of sleep between calls (0: back to back).  Between calls the
runtime's idle threads do what the runtime does (GNU libgomp spins up to about 3 ms by
default before it sleeps), so the load keeps `threads` cores busy even though each call
is short.

- ``c`` (default): a tiny C program compiled on the fly with ``$CC -O2 -fopenmp`` (GCC or
  Clang) into a temporary folder: a parallel sum and scale over `size` doubles.  It
  depends on nothing but a C compiler with OpenMP.
- ``fastloss``: fastloss's own MSE value_and_grad on `size` float32 elements, n_threads =
  `threads` (a second fastloss process; the case the issue measured).
- ``torch``: PyTorch's mse_loss forward and backward on `size` float32 elements with
  torch.set_num_threads(`threads`).

The process runs until killed (or `--seconds` pass) and prints the number of calls made
when it ends.  bench/busy_machine.py starts it as a subprocess.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

C_SOURCE = r"""
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
/* argv: threads size seconds pause_us */
int main(int argc, char** argv)
{
    int nt = atoi(argv[1]);
    long n = atol(argv[2]);
    double seconds = atof(argv[3]);
    long pause_us = atol(argv[4]);
    double* a = malloc(sizeof(double) * n);
    for (long i = 0; i < n; i++)
        a[i] = (double)(i % 97) * 0.01;
    double sink = 0, t0 = omp_get_wtime();
    long calls = 0;
    struct timespec pause = {pause_us / 1000000, (pause_us % 1000000) * 1000};
    while (seconds <= 0 || omp_get_wtime() - t0 < seconds) {
        double s = 0;
        #pragma omp parallel for num_threads(nt) reduction(+:s) schedule(static)
        for (long i = 0; i < n; i++) {
            s += a[i] * a[i];
            a[i] = a[i] * 0.999 + 0.001;
        }
        sink += s;
        calls++;
        if (pause_us > 0)
            nanosleep(&pause, NULL);
    }
    printf("omp_load (c): %ld calls (%g)\n", calls, sink > 0 ? 1.0 : 0.0);
    return 0;
}
"""


def _stop_on_sigterm() -> None:
    """SIGTERM (how bench/busy_machine.py stops the load) ends the loop like Ctrl-C, so
    that the C child is terminated and the temporary folder removed."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


def run_c(args) -> int:
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc") or "cc"
    with tempfile.TemporaryDirectory(prefix="omp_load_") as tmp:
        src, exe = Path(tmp) / "omp_load.c", Path(tmp) / "omp_load"
        src.write_text(C_SOURCE)
        subprocess.run([cc, "-O2", "-fopenmp", str(src), "-o", str(exe)], check=True)
        # exec-like: the child is the load; forward its exit status
        proc = subprocess.Popen([str(exe), str(args.threads), str(args.size),
                                 str(args.seconds), str(args.pause_us)])
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            return proc.wait()
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait()


def _loop(call, args) -> int:
    t0 = time.perf_counter()
    calls = 0
    pause = args.pause_us / 1e6
    try:
        while args.seconds <= 0 or time.perf_counter() - t0 < args.seconds:
            call()
            calls += 1
            if pause:
                time.sleep(pause)
    except KeyboardInterrupt:
        pass
    print(f"omp_load ({args.kind}): {calls} calls")
    return 0


def run_fastloss(args) -> int:
    import numpy as np
    try:
        import fastloss
    except ImportError:             # not installed: the in-place build of this checkout
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
        import fastloss
    rng = np.random.default_rng(1)
    x = rng.standard_normal(args.size, dtype=np.float32)
    t = rng.standard_normal(args.size, dtype=np.float32)
    g = np.empty_like(x)
    loss = fastloss.MSE()
    return _loop(lambda: loss.value_and_grad(x, t, n_threads=args.threads, out=g), args)


def run_torch(args) -> int:
    import torch
    torch.set_num_threads(args.threads)
    x = torch.randn(args.size, requires_grad=True)
    t = torch.randn(args.size)

    def call():
        x.grad = None
        torch.nn.functional.mse_loss(x, t).backward()
    return _loop(call, args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=("c", "fastloss", "torch"), default="c")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=65536,
                        help="elements per call (default 65536: tens of microseconds)")
    parser.add_argument("--seconds", type=float, default=0.0,
                        help="stop after this long (default: run until killed)")
    parser.add_argument("--pause-us", type=int, default=0,
                        help="sleep between calls, microseconds (default 0)")
    args = parser.parse_args(argv)
    _stop_on_sigterm()
    if args.threads < 1 or args.size < 1:
        parser.error("--threads and --size must be at least 1")
    return {"c": run_c, "fastloss": run_fastloss, "torch": run_torch}[args.kind](args)


if __name__ == "__main__":
    sys.exit(main())
