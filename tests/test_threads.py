"""The kernels' threads (fl_omp.h's block pool, blocks.pxd's blocked_sum): the same bits
whoever runs which block.

Pool threads work through their own shares of the blocks and steal from the others'; a
call that finds the pool busy (another Python thread's call) runs in an OpenMP team
instead; after a helper stalls a call, calls run on the calling thread alone for a while;
a forked child starts with an empty pool.  Each of
these paths must give the bits of the 1-thread call.  (tests/test_api.py checks thread
counts 1, 2, 3 and 7 on an idle machine; the timing side is bench/busy_machine.py.)
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import fastloss
from fastloss._kernels import cpu

ROOT = Path(__file__).resolve().parents[1]
HAS_THREADS = bool(cpu.openmp_version()) and cpu.num_procs() >= 2
needs_threads = pytest.mark.skipif(not HAS_THREADS, reason="needs OpenMP and 2 cores")


def cases(seed, n=300_000):
    """(loss, input, target) for a pointwise and a softmax loss, float32 and float64."""
    rng = np.random.default_rng(seed)
    out = []
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal(n).astype(dtype)
        out.append((fastloss.MSE(), x, rng.standard_normal(n).astype(dtype)))
        z = rng.standard_normal((n // 10, 10)).astype(dtype)
        out.append((fastloss.CrossEntropy(), z, rng.integers(0, 10, n // 10)))
    return out


def run(case, n_threads):
    loss, x, t = case
    value, grad = loss.value_and_grad(x, t, n_threads=n_threads)
    return value, grad


def same(a, b):
    return a[0] == b[0] and np.array_equal(a[1], b[1])


@needs_threads
def test_python_threads_calling_at_once_get_the_bits_of_one_thread():
    """Four Python threads, each making 2-thread calls: one has the pool, the others run
    OpenMP teams, in every interleaving."""
    work = [cases(seed) for seed in range(4)]
    want = [[run(c, 1) for c in w] for w in work]
    wrong = []

    def caller(k):
        for _ in range(5):
            for case, ref in zip(work[k], want[k]):
                if not same(run(case, 2), ref):
                    wrong.append((k, type(case[0]).__name__, case[1].dtype))

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not wrong


@needs_threads
def test_the_same_bits_while_another_process_keeps_the_cores_busy():
    """Short 2-thread OpenMP calls in a loop in another process (tools/omp_load.py): the
    pool's helpers lose their cores, calls stall, back off to one thread and come back."""
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    load_tool = ROOT / "tools" / "omp_load.py"
    if not cc or not load_tool.is_file():
        pytest.skip("needs the source tree's tools/ and a C compiler")
    work = cases(7, n=1_000_000)
    want = [run(c, 1) for c in work]
    load = subprocess.Popen([sys.executable, str(load_tool), "--kind", "c", "--seconds", "60"],
                            stdout=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        wrong = []
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 4.0:
            for case, ref in zip(work, want):
                for nt in (2, 1, 3):
                    if not same(run(case, nt), ref):
                        wrong.append((type(case[0]).__name__, case[1].dtype, nt))
        assert load.poll() is None, "the load process ended early"
    finally:
        load.terminate()
        load.wait(timeout=30)
    assert not wrong


FORK_CHILD = textwrap.dedent("""
    import os
    import numpy as np
    import fastloss
    from fastloss import _validation

    rng = np.random.default_rng(0)
    x = rng.standard_normal(10**6)
    t = rng.standard_normal(10**6)
    want = fastloss.MSE().value_and_grad(x, t, n_threads=1)
    fastloss.MSE().value_and_grad(x, t, n_threads=2)       # the pool has helpers now
    pid = os.fork()
    if pid == 0:
        _validation._forked_after_threads = False   # use threads in the child regardless
        ok = all(_validation.resolve_threads(2) == 2
                 and (lambda r: r[0] == want[0] and np.array_equal(r[1], want[1]))(
                     fastloss.MSE().value_and_grad(x, t, n_threads=2))
                 for _ in range(20))
        os._exit(0 if ok else 3)
    _, status = os.waitpid(pid, 0)
    print("child", os.waitstatus_to_exitcode(status))
""")


@needs_threads
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_can_use_threads_again():
    """The pool's helpers do not survive fork(); the child starts an empty pool instead of
    waiting for them (fastloss still runs such children serially by default, for the
    OpenMP fallback: tests/test_runtime.py)."""
    proc = subprocess.run([sys.executable, "-c", FORK_CHILD], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              [str(Path(fastloss.__file__).parents[1]),
                               os.environ.get("PYTHONPATH", "")])})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "child 0" in proc.stdout, proc.stdout + proc.stderr[-2000:]
