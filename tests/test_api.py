"""The call protocol shared by every loss: arguments, errors, dtypes, layouts, `out`,
threads and determinism (docs/contract.md, "Methods" and "Dtypes and layouts")."""
import doctest
import importlib
import os
import pkgutil
import subprocess
import sys

import numpy as np
import pytest

import fastloss
import fastloss.losses
from conftest import is_rowwise, sample_shape, target_for
from fastloss._kernels import cpu

#: one instance of every loss in the table (fastloss.LOSSES), with default parameters
ALL = [cls() for cls in fastloss.LOSSES]


# ------------------------------------------------------------------ results and types ----

@pytest.mark.parametrize("loss", ALL, ids=repr)
def test_result_types_and_shapes(loss, rng):
    x = rng.normal(size=(6, 5))
    t = target_for(loss, x, rng)
    shape_l = sample_shape(loss, x.shape)
    assert type(loss(x, t)) is float
    assert type(loss(x, t, reduction="sum")) is float
    none = loss(x, t, reduction="none")
    assert isinstance(none, np.ndarray) and none.shape == shape_l
    value, grad = loss.value_and_grad(x, t)
    assert type(value) is float and grad.shape == x.shape and grad.dtype == np.float64
    grad, hess = loss.grad_hess(x, t)
    assert grad.shape == hess.shape == x.shape
    np.testing.assert_allclose(loss(x, t, reduction="sum"), none.sum(), rtol=1e-13)
    np.testing.assert_allclose(loss(x, t), none.mean(), rtol=1e-13)


@pytest.mark.parametrize("loss", ALL, ids=repr)
def test_methods_agree(loss, rng):
    """__call__, value_and_grad and grad_hess compute the same value and gradient."""
    x = rng.normal(size=(40, 7))
    t = target_for(loss, x, rng)
    w = rng.uniform(0, 2, 40)
    for reduction in ("mean", "sum", "none"):
        value = loss(x, t, sample_weight=w, reduction=reduction)
        v2, g2 = loss.value_and_grad(x, t, sample_weight=w, reduction=reduction)
        g3, _ = loss.grad_hess(x, t, sample_weight=w, reduction=reduction)
        np.testing.assert_array_equal(value, v2)
        np.testing.assert_array_equal(g2, g3)


@pytest.mark.parametrize("loss", ALL, ids=repr)
def test_sample_weight_forms(loss, rng):
    """Leading-axis weights equal the same weights spelled out per sample, and integer
    weights equal repeated samples."""
    x = rng.normal(size=(5, 3, 4))
    t = target_for(loss, x, rng)
    w = np.array([0.0, 1.0, 2.0, 3.0, 1.0])
    shape_l = sample_shape(loss, x.shape)
    full = np.broadcast_to(w.reshape((5,) + (1,) * (len(shape_l) - 1)), shape_l).copy()
    for reduction in ("mean", "sum", "none"):
        a = loss.value_and_grad(x, t, sample_weight=w, reduction=reduction)
        b = loss.value_and_grad(x, t, sample_weight=full, reduction=reduction)
        np.testing.assert_allclose(a[0], b[0], rtol=1e-14)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-14)
    reps = np.repeat(np.arange(5), w.astype(int))
    np.testing.assert_allclose(loss(x, t, sample_weight=w), loss(x[reps], t[reps]), rtol=1e-13)


@pytest.mark.parametrize("loss", ALL, ids=repr)
def test_empty_input_and_zero_weights_give_zero_not_nan(loss, rng):
    x = np.empty((0, 4))
    t = target_for(loss, x, rng)
    assert loss(x, t) == 0.0
    assert loss(x, t, reduction="sum") == 0.0
    assert loss(x, t, reduction="none").shape == sample_shape(loss, x.shape)
    value, grad = loss.value_and_grad(x, t)
    assert value == 0.0 and grad.shape == (0, 4)
    x = rng.normal(size=(3, 4))
    x[1, 2] = np.nan
    t = target_for(loss, x, rng)
    zeros = np.zeros(3)
    value, grad = loss.value_and_grad(x, t, sample_weight=zeros)
    assert value == 0.0 and np.all(grad == 0)
    grad, hess = loss.grad_hess(x, t, sample_weight=zeros, reduction="mean")
    assert np.all(grad == 0) and np.all(hess == 0)


# ------------------------------------------------------------------ dtypes ----

@pytest.mark.parametrize("loss", ALL, ids=repr)
def test_float32_stays_float32(loss, rng):
    x = rng.normal(size=(8, 6)).astype(np.float32)
    t = target_for(loss, x.astype(np.float64), rng)          # float64 target: follows input
    value, grad = loss.value_and_grad(x, t)
    assert grad.dtype == np.float32
    grad, hess = loss.grad_hess(x, t)
    assert grad.dtype == hess.dtype == np.float32
    assert loss(x, t, reduction="none").dtype == np.float32


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16, np.bool_])
def test_other_real_dtypes_compute_in_float64(dtype):
    """(float16 and bfloat16 compute in float32: tests/test_half.py.)"""
    x = np.array([[1, 0, 1], [0, 1, 1]]).astype(dtype)
    t = np.zeros((2, 3))
    value, grad = fastloss.MSE().value_and_grad(x, t)
    assert grad.dtype == np.float64
    assert value == pytest.approx(4 / 6)


@pytest.mark.parametrize("bad", [np.array([1 + 2j, 3j]), np.array([object(), object()]),
                                 np.array(["a", "b"]), ["x", "y"],
                                 # 2-byte dtypes that are not bfloat16 (which is told apart
                                 # by its type, _validation._half_kind)
                                 np.zeros(2, "V2"), np.zeros(2, [("a", "<u2")])],
                         ids=["complex", "object", "str", "list-of-str", "void2", "record2"])
def test_complex_object_string_data_raise_type_error(bad):
    with pytest.raises(TypeError, match="real numbers"):
        fastloss.MSE()(bad, np.zeros(2))
    with pytest.raises(TypeError, match="real numbers"):
        fastloss.MSE()(np.zeros(2), bad)


# ------------------------------------------------------------------ layouts ----

@pytest.mark.parametrize("loss", ALL, ids=repr)
def test_any_layout_gives_the_contiguous_result(loss, rng, tmp_path):
    base = rng.normal(size=(12, 10))
    t = target_for(loss, base, rng)
    expected = loss.value_and_grad(base, t, reduction="none")
    variants = {
        "fortran": np.asfortranarray(base),
        "read-only": base.copy(),
        "list": base.tolist(),
    }
    variants["read-only"].flags.writeable = False
    mm = np.memmap(tmp_path / "x.dat", dtype=np.float64, mode="w+", shape=base.shape)
    mm[:] = base
    mm.flush()
    variants["memmap"] = np.memmap(tmp_path / "x.dat", dtype=np.float64, mode="r", shape=base.shape)
    wide = np.zeros((12, 30))
    wide[:, ::3] = base
    variants["strided"] = wide[:, ::3]
    twice = np.empty((24, 10))
    twice[::2] = base
    variants["row-stride"] = twice[::2]
    for name, x in variants.items():
        got = loss.value_and_grad(x, t, reduction="none")
        np.testing.assert_array_equal(got[0], expected[0], err_msg=name)
        np.testing.assert_array_equal(got[1], expected[1], err_msg=name)
        assert got[1].flags.c_contiguous


def test_one_dimensional_strided_views_are_read_in_place(rng):
    x = rng.normal(size=3000)
    t = rng.normal(size=3000)
    for step in (2, 3, -1, -4):
        np.testing.assert_array_equal(fastloss.MSE().value_and_grad(x[::step], t[::step])[1],
                                      fastloss.MSE().value_and_grad(x[::step].copy(),
                                                                    t[::step].copy())[1])


def test_rows_with_a_row_stride_are_read_in_place(rng):
    x = rng.normal(size=(50, 40))
    y = rng.integers(0, 17, 50)
    for view in (x[:, :17], x[::2, 3:20], x[::-1, :17]):
        np.testing.assert_array_equal(
            fastloss.CrossEntropy().value_and_grad(view, y[: len(view)])[1],
            fastloss.CrossEntropy().value_and_grad(view.copy(), y[: len(view)])[1])


def test_torch_tensors_are_accepted(rng):
    torch = pytest.importorskip("torch")
    x = rng.normal(size=(5, 4))
    t = rng.integers(0, 4, 5)
    assert fastloss.CrossEntropy()(torch.tensor(x), torch.tensor(t)) == \
        fastloss.CrossEntropy()(x, t)
    assert fastloss.MSE()(torch.tensor(x, dtype=torch.float32), torch.zeros(5, 4)) == \
        pytest.approx(fastloss.MSE()(x.astype(np.float32), np.zeros((5, 4))), rel=1e-6)


def test_array_like_with_dunder_array():
    class Wrapper:
        def __init__(self, a):
            self.a = np.asarray(a)

        def __array__(self, dtype=None, copy=None):
            return self.a

    assert fastloss.MSE()(Wrapper([1.0, 2.0]), Wrapper([0.0, 0.0])) == 2.5


def test_64_bit_indexing_beyond_2_to_the_31_elements():
    """A zero-stride view of 2^31 + 3 elements (no memory): the value-only path reads it
    in place, and the sum needs 64-bit indices."""
    n = 2**31 + 3
    x = np.broadcast_to(np.float32(3.0), (n,))
    t = np.broadcast_to(np.float32(1.0), (n,))
    assert fastloss.MSE()(x, t, reduction="sum", n_threads=-1) == 4.0 * n
    assert fastloss.MAE()(x, t, n_threads=-1) == 2.0


# ------------------------------------------------------------------ errors ----

@pytest.mark.parametrize("loss", ALL, ids=repr)
def test_shape_mismatch_names_both_shapes(loss, rng):
    x = rng.normal(size=(4, 3))
    t = rng.normal(size=(3, 4)) if not is_rowwise(loss) else rng.normal(size=(4, 2))
    with pytest.raises(ValueError, match=r"\(4, 3\)") as info:
        loss(x, t)
    assert str(t.shape) in str(info.value)


@pytest.mark.parametrize("loss", ALL, ids=repr)
def test_bad_reduction(loss, rng):
    x = rng.normal(size=(2, 3))
    with pytest.raises(ValueError, match="reduction must be"):
        loss(x, target_for(loss, x, rng), reduction="avg")


@pytest.mark.parametrize("n_threads, error", [(0, ValueError), (-2, ValueError),
                                               (1.5, TypeError), ("2", TypeError),
                                               (True, TypeError)])
def test_bad_n_threads(n_threads, error):
    with pytest.raises(error, match="n_threads"):
        fastloss.MSE()(np.zeros(3), np.zeros(3), n_threads=n_threads)


def test_n_threads_accepts_numpy_integers_and_caps_at_the_cores():
    fastloss.MSE()(np.zeros(3), np.zeros(3), n_threads=np.int64(2))
    fastloss.MSE()(np.zeros(3), np.zeros(3), n_threads=10_000)


@pytest.mark.parametrize("weight, match", [
    (np.ones(5), r"sample_weight has shape \(5,\)"),
    (np.ones((4, 2)), r"expected \(4,\) or \(4, 3\)"),
    (np.array([1.0, -1.0, 1.0, 1.0]), r"sample_weight\[1\] = -1.0"),
    (np.array([1.0, 1.0, np.nan, 1.0]), r"sample_weight\[2\] = nan"),
    (np.array([1.0, 1.0, 1.0, np.inf]), r"sample_weight\[3\] = inf"),
])
def test_bad_sample_weight(weight, match):
    with pytest.raises(ValueError, match=match):
        fastloss.MSE()(np.zeros((4, 3)), np.zeros((4, 3)), sample_weight=weight)


@pytest.mark.parametrize("delta", [0, -1.0, np.inf, np.nan, "one", None, True])
def test_bad_delta(delta):
    with pytest.raises(ValueError, match="delta"):
        fastloss.PseudoHuber(delta=delta)


# ------------------------------------------------------------------ out= ----

@pytest.mark.parametrize("loss", ALL, ids=repr)
def test_out_is_filled_and_returned(loss, rng):
    x = rng.normal(size=(6, 5)).astype(np.float32)
    t = target_for(loss, x, rng)
    out = np.full(x.shape, 7, dtype=np.float32)
    value, grad = loss.value_and_grad(x, t, out=out)
    assert grad is out
    np.testing.assert_array_equal(out, loss.value_and_grad(x, t)[1])
    g, h = np.empty_like(x), np.empty_like(x)
    grad, hess = loss.grad_hess(x, t, out=(g, h))
    assert grad is g and hess is h
    np.testing.assert_array_equal(h, loss.grad_hess(x, t)[1])


def bad_outs(shape):
    ro = np.zeros(shape)
    ro.flags.writeable = False
    return {
        "shape": np.zeros(shape[::-1]),
        "dtype": np.zeros(shape, dtype=np.float32),
        "layout": np.zeros(shape, order="F"),
        "read-only": ro,
        "not-an-array": [[0.0] * shape[1]] * shape[0],
    }


@pytest.mark.parametrize("loss", ALL, ids=repr)
@pytest.mark.parametrize("kind", ["shape", "dtype", "layout", "read-only", "not-an-array"])
def test_bad_out_raises_and_writes_nothing(loss, kind, rng):
    x = rng.normal(size=(4, 3))
    t = target_for(loss, x, rng)
    out = bad_outs(x.shape)[kind]
    before = np.array(out, copy=True)
    with pytest.raises(ValueError, match="out"):
        loss.value_and_grad(x, t, out=out)
    np.testing.assert_array_equal(np.asarray(out), before)
    good = np.full(x.shape, 5.0)
    with pytest.raises(ValueError, match="out"):
        loss.grad_hess(x, t, out=(good, out))
    assert np.all(good == 5.0)


def test_out_must_not_overlap_the_arguments(rng):
    x = rng.normal(size=10)
    with pytest.raises(ValueError, match="share memory"):
        fastloss.MSE().value_and_grad(x, np.zeros(10), out=x)
    g = np.empty(10)
    with pytest.raises(ValueError, match="share memory"):
        fastloss.MSE().grad_hess(x, np.zeros(10), out=(g, g))


def test_nothing_is_written_when_a_later_argument_is_bad(rng):
    x = rng.normal(size=(4, 3))
    out = np.full(x.shape, 3.0)
    with pytest.raises(ValueError):
        fastloss.MSE().value_and_grad(x, x, sample_weight=-np.ones(4), out=out)
    with pytest.raises(ValueError):
        fastloss.CrossEntropy().value_and_grad(x, np.array([0, 1, 5, 2]), out=out)
    assert np.all(out == 3.0)


# ------------------------------------------------------------------ threads ----

@pytest.mark.parametrize("loss", ALL, ids=repr)
def test_bitwise_identical_for_every_thread_count(loss):
    rng = np.random.default_rng(3)
    shape = (3000, 7) if is_rowwise(loss) else (400_000,)
    for dtype in (np.float32, np.float64):
        x = rng.normal(size=shape).astype(dtype)
        t = target_for(loss, x, rng)
        w = rng.uniform(0, 2, shape[0])
        results = [loss.value_and_grad(x, t, sample_weight=w, n_threads=n)
                   for n in (1, 2, 3, 7)]
        for value, grad in results[1:]:
            assert value == results[0][0]
            assert np.array_equal(grad, results[0][1])
        values = {loss(x, t, n_threads=n) for n in (1, 2, 3, 7, None, -1)}
        assert len(values) == 1


def test_default_threads_follow_threadpoolctl():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert cpu.max_threads() == 1
    assert cpu.max_threads() >= 1


def test_default_threads_follow_omp_num_threads():
    code = "from fastloss._kernels import cpu; print(cpu.max_threads())"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "1", out.stderr


# ------------------------------------------------------------------ documentation ----

def _modules_with_docstrings():
    """Every Python module of the package (private ones too: public objects such as
    show_config are defined there); not the compiled kernels, which hold no examples and
    may be built for instructions this CPU lacks."""
    names = ["fastloss"]
    for info in pkgutil.walk_packages(fastloss.__path__, "fastloss."):
        if not info.name.startswith("fastloss._kernels"):
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules_with_docstrings())
def test_docstring_examples_run(name):
    """The examples of every docstring (the API reference shows them) run and print what
    they show.  A module whose optional dependency is missing is skipped."""
    try:
        module = importlib.import_module(name)
    except ImportError as e:
        pytest.skip(f"{name} needs {e.name}, which is not installed")
    failures, tried = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE,
                                      verbose=False, report=True)
    assert failures == 0
    if name == "fastloss.losses":
        assert tried >= 2 * len(fastloss.LOSSES)      # every row's example ran


def test_repr_shows_the_parameters():
    assert repr(fastloss.PseudoHuber(2.0)) == "PseudoHuber(delta=2.0)"
    assert "label_smoothing=0.1" in repr(fastloss.CrossEntropy(label_smoothing=0.1))


def test_functional_forms_match_the_classes(rng):
    x = rng.normal(size=(6, 4))
    t = rng.normal(size=(6, 4))
    y = rng.integers(0, 4, 6)
    p = rng.dirichlet(np.ones(4), 6)
    assert fastloss.mse(x, t, reduction="sum") == fastloss.MSE()(x, t, reduction="sum")
    assert fastloss.mae(x, t) == fastloss.MAE()(x, t)
    assert fastloss.pseudo_huber(x, t, 2.0) == fastloss.PseudoHuber(2.0)(x, t)
    assert fastloss.cross_entropy(x, y, label_smoothing=0.1) == \
        fastloss.CrossEntropy(label_smoothing=0.1)(x, y)
    assert fastloss.binary_cross_entropy(x, p, pos_weight=2.0) == \
        fastloss.BinaryCrossEntropy(pos_weight=2.0)(x, p)
    assert fastloss.kl_divergence(x, p) == fastloss.KLDivergence()(x, p)


def test_show_config_reports_openmp_and_the_simd_level(capsys):
    info = fastloss.show_config()
    printed = capsys.readouterr().out
    assert info["simd"] in info["simd_available"] and f"simd: {info['simd']}" in printed
    assert info["openmp"] == bool(cpu.openmp_version())
    assert info["default_threads"] == cpu.max_threads()
    if info["openmp"]:
        assert info["openmp_runtime"]


@pytest.mark.parametrize("level", ["baseline", "avx2", "avx512"])
def test_fastloss_simd_forces_a_lower_level(level):
    code = "import fastloss; print(fastloss._dispatch.kernels.level)"
    env = dict(os.environ, FASTLOSS_SIMD=level)
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], env=env,
                         capture_output=True, text=True)
    if level in fastloss._dispatch.available():
        assert out.stdout.strip() == level, out.stderr
    else:                                   # not on this CPU: a warning (an error here)
        assert out.returncode != 0 and "FASTLOSS_SIMD" in out.stderr
