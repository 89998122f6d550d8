"""fastloss beside other users of OpenMP: PyTorch, threadpoolctl, and multiprocessing.

Every scenario runs in a fresh Python subprocess, with a timeout, so that a crash (two
OpenMP runtimes refusing each other), a deadlock (a forked child waiting for a thread pool
that did not survive fork) or a leaked limit can neither take down nor hang this test run.

Setting ``FASTLOSS_WHEEL_TEST=1`` (cibuildwheel's test-environment and tools/check_wheel.py
do) declares that the installed fastloss is a release wheel: it must then be an OpenMP build
whose runtime is vendored inside the wheel (fastloss.libs/ or fastloss/.dylibs/).

What was found (Linux, GCC's libgomp, vendored by auditwheel):
* torch and fastloss import and compute together in either order; each keeps its own libgomp
  copy, and threadpoolctl lists both and limits both (torch.get_num_threads() follows it).
* A child started with the ``fork`` method after fastloss has run a parallel region would
  hang forever in its first parallel call: libgomp's thread pool does not survive fork (a
  known libgomp limitation, shared by every libgomp user, PyTorch included).  fastloss
  therefore runs such children serially (an at-fork hook in fastloss._validation); children
  started with ``spawn`` or ``forkserver`` (the default on Linux from Python 3.14) keep
  every thread.
"""
from __future__ import annotations

import importlib.util
import io
import json
import multiprocessing
import os
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
import textwrap

import pytest

import fastloss
from fastloss._kernels import cpu

WHEEL_TEST = os.environ.get("FASTLOSS_WHEEL_TEST", "") not in ("", "0")
HAS_OPENMP = bool(cpu.openmp_version())
HAS_THREADS = HAS_OPENMP and cpu.num_procs() >= 2

# MSE on 10**6 float64 elements with n_threads=2: far above the size at which a call goes
# parallel, so this runs an OpenMP parallel region whenever the build and machine allow it.
PARALLEL_CALL = textwrap.dedent("""
    import numpy as np
    import fastloss

    def parallel_call(n_threads=2, n=10**6):
        rng = np.random.default_rng(0)
        x = rng.standard_normal(n)
        t = rng.standard_normal(n)
        value, grad = fastloss.MSE().value_and_grad(x, t, n_threads=n_threads)
        ref = float(np.mean((x - t) ** 2))
        assert abs(value - ref) <= 1e-12 * ref, (value, ref)
        assert grad.shape == x.shape
        return value
""")


def run_python(code: str, *args: str, timeout: float = 120):
    """Run ``code`` as a script in a fresh interpreter; kill its process group on timeout.

    The script is a real file (multiprocessing's spawn and forkserver children import the
    parent's main module), in a temporary folder.  Returns (returncode, stdout, stderr);
    returncode is None when it timed out.
    """
    folder = tempfile.mkdtemp(prefix="fastloss-runtime-")
    script = os.path.join(folder, "scenario.py")
    with open(script, "w") as f:
        f.write(code)
    env = dict(os.environ)
    # the fastloss that this test process imported, also where that is not an install
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastloss.__file__)))
    installed = {os.path.realpath(p) for p in
                 [*sysconfig.get_paths().values(), site.getusersitepackages()]}
    if os.path.realpath(root) not in installed:
        env["PYTHONPATH"] = os.pathsep.join(
            [root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    kwargs = {}
    if os.name == "posix":
        kwargs["start_new_session"] = True          # so that grandchildren die with it
    proc = subprocess.Popen([sys.executable, script, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=folder, env=env, **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        out, err = proc.communicate()
        return None, out, err
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_ok(code: str, *args: str, timeout: float = 120) -> str:
    rc, out, err = run_python(code, *args, timeout=timeout)
    assert rc is not None, f"timed out after {timeout} s\nstdout:\n{out}\nstderr:\n{err}"
    assert rc == 0, f"exit code {rc}\nstdout:\n{out}\nstderr:\n{err}"
    return out


def test_build_has_openmp():
    """A wheel must be an OpenMP build (a source build may be serial on purpose)."""
    config = fastloss.show_config(file=io.StringIO())
    if not WHEEL_TEST and not config["openmp"]:
        pytest.skip("fastloss was built without OpenMP (FASTLOSS_OPENMP=off or no compiler "
                    "support); set FASTLOSS_WHEEL_TEST=1 to make this an error")
    assert config["openmp"] is True
    assert cpu.openmp_version() >= 200203
    assert cpu.max_threads() >= 1
    for flag in ("-ffast-math", "-march=native", "/fp:fast"):
        assert flag not in json.dumps(config), f"{flag} in the build flags: {config}"


# ---------------------------------------------------------------------------------------------
# (a) torch and fastloss in one process


TORCH_AND_FASTLOSS = PARALLEL_CALL + textwrap.dedent("""
    import numpy as np
    import torch

    torch.set_num_threads(2)
    rng = np.random.default_rng(1)
    a = torch.from_numpy(rng.standard_normal((512, 512)))
    for _ in range(3):                         # interleave both runtimes' parallel regions
        v = parallel_call()
        c = (a @ a).sum().item()                # torch's intra-op (OpenMP) thread pool
        x = torch.from_numpy(rng.standard_normal(10**6))
        t = torch.zeros(10**6, dtype=torch.float64)
        ours = fastloss.MSE()(x, t, n_threads=2)
        theirs = torch.nn.functional.mse_loss(x, t).item()
        assert abs(ours - theirs) <= 1e-12 * theirs, (ours, theirs)
    print("OK", v, c)
""")


@pytest.mark.parametrize("first", ["torch", "fastloss"])
def test_torch_and_fastloss_in_one_process(first):
    pytest.importorskip("torch")
    order = "import torch\nimport fastloss\n" if first == "torch" else \
            "import fastloss\nimport torch\n"
    out = check_ok(order + TORCH_AND_FASTLOSS, timeout=300)
    assert "OK" in out


# ---------------------------------------------------------------------------------------------
# (b) threadpoolctl finds fastloss's OpenMP runtime and its limits take effect


THREADPOOLCTL_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import numpy                  # its BLAS is loaded first, so what fastloss adds is its own
    import threadpoolctl
    before = {m["filepath"] for m in threadpoolctl.threadpool_info()}
    import fastloss
    from fastloss._kernels import cpu
    ours = [m for m in threadpoolctl.threadpool_info()
            if m["user_api"] == "openmp" and m["filepath"] not in before]
    default = cpu.max_threads()
    with threadpoolctl.threadpool_limits(limits=1):
        inside_all = cpu.max_threads()
    after_all = cpu.max_threads()
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        inside_openmp = cpu.max_threads()
        value_limited = fastloss.MSE()(list(range(100000)), [0.0] * 100000)
    value = fastloss.MSE()(list(range(100000)), [0.0] * 100000)
    print(json.dumps(dict(ours=ours, default=default, inside_all=inside_all,
                          after_all=after_all, inside_openmp=inside_openmp,
                          same_value=value == value_limited,
                          site=os.path.dirname(os.path.dirname(fastloss.__file__)))))
""")


def test_threadpoolctl_sees_and_limits_fastloss_openmp():
    pytest.importorskip("threadpoolctl")
    if not HAS_OPENMP:
        if WHEEL_TEST:
            pytest.fail("a wheel without OpenMP")
        pytest.skip("fastloss was built without OpenMP")
    out = check_ok(THREADPOOLCTL_SCRIPT, timeout=120)
    r = json.loads(out.strip().splitlines()[-1])
    assert len(r["ours"]) == 1, f"threadpoolctl should see exactly one new OpenMP runtime: {r}"
    lib = r["ours"][0]
    assert lib["num_threads"] == r["default"]
    assert r["inside_all"] == 1 and r["inside_openmp"] == 1, r
    assert r["after_all"] == r["default"], r
    assert r["same_value"], "a thread limit changed a result"
    if WHEEL_TEST:
        # the runtime is the copy vendored into the wheel (auditwheel: fastloss.libs/,
        # delocate: fastloss/.dylibs/, delvewheel: fastloss.libs/), not a system library
        rel = os.path.relpath(lib["filepath"], r["site"])
        assert rel.split(os.sep)[0] in ("fastloss.libs", "fastloss"), \
            f"OpenMP runtime not vendored in the wheel: {lib['filepath']}"


# ---------------------------------------------------------------------------------------------
# (c) multiprocessing after a parallel fastloss call


CHILD_AFTER_PARALLEL = PARALLEL_CALL + textwrap.dedent("""
    import multiprocessing as mp
    import sys

    def child(queue, n_threads):
        queue.put(parallel_call(n_threads=n_threads))

    if __name__ == "__main__":
        method, child_threads, join_timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
        expected = parallel_call(n_threads=2)       # the parent's thread pool is now running
        ctx = mp.get_context(method)
        queue = ctx.Queue()
        proc = ctx.Process(target=child, args=(queue, child_threads))
        proc.start()
        proc.join(join_timeout)
        if proc.is_alive():
            proc.kill()
            proc.join()
            print("HANG")
            sys.exit(0)
        assert proc.exitcode == 0, proc.exitcode
        got = queue.get(timeout=30)
        assert got == expected, (got, expected)     # bitwise, whatever the thread count
        print("OK")
""")


def run_child(method: str, child_threads: int, join_timeout: float) -> str:
    out = check_ok(CHILD_AFTER_PARALLEL, method, str(child_threads), str(join_timeout),
                   timeout=join_timeout + 90)
    return out.strip().splitlines()[-1]


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_child_after_parallel_call(method):
    """The supported way to use fastloss in worker processes: spawn or forkserver."""
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    assert run_child(method, child_threads=2, join_timeout=90) == "OK"


def test_fork_child_serial_after_parallel_call():
    """With fork, a child that calls fastloss with n_threads=1 never needs the thread pool."""
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork here")
    assert run_child("fork", child_threads=1, join_timeout=60) == "OK"


def test_fork_child_parallel_after_parallel_call():
    """With fork, a child asking for threads after the parent's parallel call completes.

    GNU libgomp's thread pool does not survive fork(): a parallel region in the child would
    wait forever for threads that do not exist.  fastloss runs such children on one thread
    (same results, bitwise), so this must finish, never hang.
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork here")
    if not HAS_THREADS:
        pytest.skip("needs an OpenMP build and at least 2 cores to run a parallel region")
    result = run_child("fork", child_threads=2, join_timeout=60)
    assert result == "OK", f"forked child hung (OpenMP runtime {openmp_runtime_prefix()})"


def test_forked_child_runs_serially_only_after_parent_threads():
    """The at-fork rule itself: serial only if the parent had used threads."""
    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    code = textwrap.dedent("""
        import os
        from fastloss import _validation
        def in_child():
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.write(w, str(_validation.resolve_threads(2)).encode())
                os._exit(0)
            os.waitpid(pid, 0)
            return os.read(r, 10).decode()
        before = in_child()                     # the parent has not used threads yet
        _validation.resolve_threads(2)          # now it has
        print(before, in_child(), _validation.resolve_threads(2))
    """)
    out = check_ok(code, timeout=60).split()
    cores = min(2, cpu.num_procs())
    assert out == [str(cores), "1", str(cores)]


def openmp_runtime_prefix() -> str:
    """threadpoolctl's name for fastloss's OpenMP runtime ('libgomp', 'libomp', ...)."""
    if importlib.util.find_spec("threadpoolctl") is None:
        return "unknown"
    rc, out, _ = run_python(THREADPOOLCTL_SCRIPT, timeout=120)
    if rc != 0:
        return "unknown"
    ours = json.loads(out.strip().splitlines()[-1])["ours"]
    return ours[0]["prefix"] if ours else "unknown"
