"""Memory safety: no argument, and no change to an argument during a call, makes a kernel
read or write outside the arrays it was given.  Each reproduction of a crash found by
hand runs in a subprocess, so that a regression shows as a failed test, not a dead run."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastloss
from conftest import target_for
from fastloss.bench.reference import misaligned


def run_python(code: str, env=None, timeout=120):
    """Run `code` in a fresh interpreter; return the CompletedProcess (a crash is a
    negative return code)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=None if env is None else
                          dict(os.environ, **env))


def assert_clean_exit(proc):
    assert proc.returncode == 0, (f"exit {proc.returncode}\nstdout:\n{proc.stdout[-2000:]}\n"
                                  f"stderr:\n{proc.stderr[-4000:]}")


# ------------------------------------------------------------------ out= and labels ----

def test_out_sharing_memory_with_the_labels_is_rejected_reproduction():
    """The reported crash: the gradient buffer holds the labels (a segfault before)."""
    proc = run_python("""
        import numpy as np, fastloss
        N, C = 256, 2
        x = np.random.default_rng(0).standard_normal((N, C))
        buf = np.zeros(N * C)
        y = buf.view(np.int64)[:N]
        y[:] = np.arange(N) % C
        try:
            fastloss.CrossEntropy().value_and_grad(x, y, out=buf.reshape(N, C))
        except ValueError as e:
            assert "share memory" in str(e), e
            print("rejected")
    """)
    assert_clean_exit(proc)
    assert "rejected" in proc.stdout


def test_no_output_may_alias_the_labels():
    """Every output is checked against the labels, for narrow and wide rows, logits and
    probabilities, value_and_grad and grad_hess (the Hessian aliasing the labels crashed
    in prob_row)."""
    proc = run_python("""
        import numpy as np, fastloss
        rng = np.random.default_rng(0)
        n = 64
        for n_cls in (2, 40):
            for from_logits in (True, False):
                x = rng.uniform(0.1, 0.9, (n, n_cls))
                loss = fastloss.CrossEntropy(from_logits=from_logits)
                buf = np.zeros(n * n_cls)
                y = buf.view(np.int64)[:n]
                y[:] = np.arange(n) % n_cls
                labels = y.copy()
                other = np.full((n, n_cls), 7.0)
                held = buf.reshape(n, n_cls)
                for call in (lambda: loss.value_and_grad(x, y, out=held),
                             lambda: loss.grad_hess(x, y, out=(other, held)),
                             lambda: loss.grad_hess(x, y, out=(held, other))):
                    try:
                        call()
                        raise AssertionError("an output aliasing the labels was accepted")
                    except ValueError as e:
                        assert "share memory" in str(e), e
                assert np.array_equal(y, labels) and np.all(other == 7.0)   # nothing written
        print("rejected")
    """)
    assert_clean_exit(proc)
    assert "rejected" in proc.stdout


CHANGING_LABELS = """
    import threading, time
    import numpy as np, fastloss
    N, C, FROM_LOGITS = {n}, {c}, {from_logits}
    rng = np.random.default_rng(0)
    x = rng.uniform(0.01, 1.0, (N, C)).astype(np.float32)
    y = rng.integers(0, C, N)
    loss = fastloss.CrossEntropy(from_logits=FROM_LOGITS)
    stop = False

    def flip():                     # the label goes out of range and back, all the time
        while not stop:
            y[N // 2] = 2**40
            y[N // 2] = 0
            y[N - 1] = -(2**40)
            y[N - 1] = 1

    th = threading.Thread(target=flip)
    th.start()
    calls = changed = 0
    start = time.monotonic()
    try:
        while time.monotonic() - start < 1.5:
            for fn in (loss.value_and_grad, loss.grad_hess, loss.__call__):
                try:
                    fn(x, y)
                except ValueError as e:
                    msg = str(e)
                    assert "is not a class index" in msg or "changed during the call" in msg, msg
                    changed += "changed during the call" in msg
                calls += 1
    finally:
        stop = True
        th.join()
    print("calls", calls, "changed", changed)
"""


@pytest.mark.parametrize("n_cls, from_logits", [(10, True), (100, True), (10, False)])
def test_labels_changed_by_another_thread_during_a_call_do_not_crash(n_cls, from_logits):
    """Labels are checked, then read again by the kernels without the GIL; a thread that
    writes an out-of-range label in between made the kernels index out of bounds (a
    segfault within seconds).  Now the kernels check what they read, and the call raises
    ValueError instead (or succeeds, if the label was back in range)."""
    proc = run_python(CHANGING_LABELS.format(n=200_000 if from_logits else 50_000, c=n_cls,
                                             from_logits=from_logits))
    assert_clean_exit(proc)
    assert "calls" in proc.stdout


def test_a_label_changed_after_the_check_is_reported_by_the_kernel():
    """The kernels' own check, without a race: the pre-pass is made to accept a bad label,
    as if it had read the label before another thread changed it."""
    proc = run_python("""
        import numpy as np, fastloss
        from fastloss._kernels import checks
        real = checks.labels
        checks.labels = lambda y, n_cls, *args: real(np.zeros_like(y), n_cls, *args)
        rng = np.random.default_rng(1)
        for n_cls in (3, 50):                               # narrow and wide rows
            x = np.abs(rng.normal(size=(300, n_cls)))
            y = rng.integers(0, n_cls, 300)
            y[123] = n_cls + 5
            for fn in (fastloss.CrossEntropy().value_and_grad,
                       fastloss.CrossEntropy().grad_hess,
                       fastloss.CrossEntropy(from_logits=False).value_and_grad):
                try:
                    fn(x, y)
                    raise AssertionError("a bad label went through")
                except ValueError as e:
                    assert "target[123] changed during the call" in str(e), e
        print("reported")
    """)
    assert_clean_exit(proc)
    assert "reported" in proc.stdout


# ------------------------------------------------------------------ alignment ----

LOSSES = [cls() for cls in fastloss.LOSSES]


@pytest.mark.parametrize("loss", LOSSES, ids=repr)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_misaligned_arguments_give_the_aligned_result(loss, dtype):
    rng = np.random.default_rng(2)
    for shape in [(37, 5), (9, 70), (500,)] if not isinstance(
            loss, fastloss.losses.Softmax) else [(37, 5), (9, 70)]:
        x = rng.normal(size=shape).astype(dtype)
        t = target_for(loss, x, rng)
        w = rng.uniform(size=shape[0]).astype(dtype)
        expected = loss.value_and_grad(x, t, sample_weight=w, reduction="none")
        got = loss.value_and_grad(misaligned(x), misaligned(t), sample_weight=misaligned(w),
                                  reduction="none")
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
        assert got[1].flags.aligned


@pytest.mark.parametrize("loss", LOSSES, ids=repr)
def test_misaligned_out_is_rejected_and_not_written(loss):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(8, 4))
    t = target_for(loss, x, rng)
    out = misaligned(np.full(x.shape, 5.0))
    with pytest.raises(ValueError, match="misaligned"):
        loss.value_and_grad(x, t, out=out)
    good = np.full(x.shape, 5.0)
    with pytest.raises(ValueError, match="misaligned"):
        loss.grad_hess(x, t, out=(good, out))
    assert np.all(out == 5.0) and np.all(good == 5.0)


# ------------------------------------------------------------------ ignore_index ----

@pytest.mark.parametrize("ignore_index", [2**63, -(2**63) - 1, 10**30])
def test_ignore_index_outside_int64_is_rejected_at_construction(ignore_index):
    with pytest.raises(ValueError, match="ignore_index"):
        fastloss.CrossEntropy(ignore_index=ignore_index)


def test_ignore_index_at_the_int64_limits_works():
    x = np.zeros((2, 3))
    for ignore in (2**63 - 1, -(2**63)):
        y = np.array([ignore, 1])
        assert fastloss.CrossEntropy(ignore_index=ignore)(x, y) == pytest.approx(np.log(3))


# ------------------------------------------------------------------ stack ----

SMALL_STACK = """
    import threading
    import numpy as np, fastloss
    rng = np.random.default_rng(0)
    failures = []

    def work():
        try:
            for dt in (np.float32, np.float64):
                for C in (3, 16, 32, 33, 1000):          # narrow and wide rows
                    x = rng.normal(size=(300, C)).astype(dt)
                    y = rng.integers(0, C, 300)
                    t = rng.dirichlet(np.ones(C), 300).astype(dt)
                    w = rng.uniform(size=300)
                    for loss, tgt in [
                            (fastloss.CrossEntropy(label_smoothing=0.1, class_weight=np.ones(C)), y),
                            (fastloss.CrossEntropy(), t), (fastloss.KLDivergence(), t),
                            (fastloss.KLDivergence(log_target=True), np.log(t)),
                            (fastloss.CrossEntropy(from_logits=False), y)]:
                        xx = x if loss.from_logits else np.abs(x)
                        loss(xx, tgt, sample_weight=w)
                        loss.value_and_grad(xx, tgt, reduction="none")
                        loss.grad_hess(xx, tgt)
                x = rng.normal(size=100_000).astype(dt)
                for loss in (fastloss.MSE(), fastloss.MAE(), fastloss.PseudoHuber(),
                             fastloss.BinaryCrossEntropy(pos_weight=2.0),
                             fastloss.BinaryCrossEntropy(from_logits=False)):
                    loss(x, x)
                    loss.value_and_grad(x, x)
                    loss.grad_hess(np.abs(x) % 1, x, sample_weight=np.ones(100_000))
                x = rng.normal(size=(400_000, 4)).astype(dt)    # over 64 blocks
                fastloss.CrossEntropy().value_and_grad(x, rng.integers(0, 4, 400_000))
        except BaseException as e:
            failures.append(repr(e))

    threading.stack_size({kib} * 1024)
    th = threading.Thread(target=work)
    th.start()
    th.join()
    assert not failures, failures
    print("done")
"""


def test_a_64_kib_thread_stack_is_enough():
    """Every path (narrow float64 softmax rows included, which needed over 104 KiB) runs
    in a Python thread with a 64 KiB stack, on the calling thread and in OpenMP's."""
    proc = run_python(SMALL_STACK.format(kib=64), env={"OMP_STACKSIZE": "64K"})
    assert_clean_exit(proc)
    assert "done" in proc.stdout
