"""The C-level API (fastloss.api, declared in fastloss/api.pxd) as a downstream library uses it.

tests/capi/fl_downstream.pyx is built here against the installed fastloss, as another
compiled library would build it (Cython + setuptools in a temporary folder, no build
isolation, nothing linked), and every function is called through it: every pointwise
kernel of the loss table, cross-entropy with labels and the dense-target softmax losses,
float32 and float64, every mode and reduction, sample weights, strides and the losses'
parameters, from Python and from the threads of a ``prange``.  Results must equal the
Python API's bit for bit.  The bad inputs must give their status code and write nothing.

The exported signatures (the names of fastloss.api's ``__pyx_capi__`` capsules) are an
ABI: a downstream module compiled against them fails to import if one changes, so they are
frozen here (SIGNATURES); change them only with a new function or API version.
"""
import ctypes
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fastloss
from fastloss import _dispatch
from conftest import LOSS_INSTANCES, input_for, target_for

pytest.importorskip("Cython", reason="building a downstream module needs Cython")
pytest.importorskip("setuptools", reason="building a downstream module needs setuptools")
api = pytest.importorskip("fastloss.api")

HERE = Path(__file__).resolve().parent

#: fastloss.api.__pyx_capi__: function name -> the C signature its capsule is named by.
#: Frozen: a downstream module compiled against fastloss/api.pxd checks these names when
#: it imports, so any change (a const, a typedef, an argument) breaks every such module.
SIGNATURES = {
    "fl_pointwise_f32":
        "int (int, int, int, Py_ssize_t, float const *, Py_ssize_t, float const *, "
        "Py_ssize_t, float const *, Py_ssize_t, float const *, Py_ssize_t, double, "
        "double *, float *, float *, float *, int)",
    "fl_pointwise_f64":
        "int (int, int, int, Py_ssize_t, double const *, Py_ssize_t, double const *, "
        "Py_ssize_t, double const *, Py_ssize_t, double const *, Py_ssize_t, double, "
        "double *, double *, double *, double *, int)",
    "fl_cross_entropy_f32":
        "int (int, int, Py_ssize_t, Py_ssize_t, float const *, Py_ssize_t, "
        "int64_t const *, int, float const *, int64_t, double, float const *, Py_ssize_t, "
        "double *, float *, float *, float *, int)",
    "fl_cross_entropy_f64":
        "int (int, int, Py_ssize_t, Py_ssize_t, double const *, Py_ssize_t, "
        "int64_t const *, int, double const *, int64_t, double, double const *, "
        "Py_ssize_t, double *, double *, double *, double *, int)",
    "fl_softmax_f32":
        "int (int, int, int, Py_ssize_t, Py_ssize_t, float const *, Py_ssize_t, "
        "float const *, Py_ssize_t, int, float const *, double, float const *, "
        "Py_ssize_t, double *, float *, float *, float *, int)",
    "fl_softmax_f64":
        "int (int, int, int, Py_ssize_t, Py_ssize_t, double const *, Py_ssize_t, "
        "double const *, Py_ssize_t, int, double const *, double, double const *, "
        "Py_ssize_t, double *, double *, double *, double *, int)",
    "fl_strerror": "char const *(int)",
}

#: The constants of fastloss/api.pxd, frozen for the same reason (a downstream module
#: compiles their values in).
CONSTANTS = dict(
    FL_API_VERSION=1, FL_OK=0, FL_EBADARG=1, FL_ELABEL=2, FL_EDATA=3, FL_ENOMEM=4,
    FL_VALUE=1, FL_VALUE_GRAD=3, FL_GRAD_HESS=6, FL_MEAN=0, FL_SUM=1, FL_NONE=2,
    FL_MSE=0, FL_MAE=1, FL_PSEUDO_HUBER=2, FL_BCE_LOGITS=3, FL_BCE_PROBS=4, FL_HUBER=5,
    FL_POISSON_NLL=6, FL_KL_DIV=7, FL_KL_DIV_LOG_TARGET=8, FL_CROSS_ENTROPY_PROBS=0,
    FL_KL_DIVERGENCE=1, FL_KL_DIVERGENCE_LOG_TARGET=2)

MODES = api.MODES
REDUCTIONS = api.REDUCTIONS
METHODS = {"value": "__call__", "value_and_grad": "value_and_grad", "grad_hess": "grad_hess"}
OK, EBADARG, ELABEL, EDATA = (api.STATUS[k] for k in ("FL_OK", "FL_EBADARG", "FL_ELABEL",
                                                       "FL_EDATA"))
DTYPES = (np.float32, np.float64)

SETUP_PY = textwrap.dedent("""
    import sys
    from Cython.Build import cythonize
    from setuptools import Extension, setup

    if sys.platform == "win32":
        omp = (["/openmp"], [])
    elif sys.platform == "darwin":
        omp = ([], [])                  # Apple's compiler has no OpenMP: a serial prange
    else:
        omp = (["-fopenmp"], ["-fopenmp"])
    ext = Extension("fl_downstream", ["fl_downstream.pyx"], extra_compile_args=omp[0],
                    extra_link_args=omp[1])
    setup(ext_modules=cythonize([ext], language_level=3, quiet=True))
""")


def build_downstream(folder: Path, pyx: Path, setup_py: str) -> None:
    """Build a downstream extension in `folder` against the fastloss that is imported here
    (installed, or a checkout on PYTHONPATH): Cython finds fastloss/api.pxd on sys.path."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(pyx, folder / pyx.name)
    (folder / "setup.py").write_text(setup_py)
    env = dict(os.environ)
    root = str(Path(fastloss.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=folder,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"the downstream build failed:\n{proc.stdout}\n{proc.stderr}"


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    """The downstream module, built once."""
    folder = tmp_path_factory.mktemp("capi") / "downstream"
    build_downstream(folder, HERE / "capi" / "fl_downstream.pyx", SETUP_PY)
    sys.path.insert(0, str(folder))
    try:
        import fl_downstream
    finally:
        sys.path.remove(str(folder))
    return fl_downstream


def addr(a) -> int:
    """The address of an array's first element, 0 for None."""
    return 0 if a is None else a.__array_interface__["data"][0]


def stride(a) -> int:
    return a.strides[0] // a.itemsize if a.ndim == 1 else 1


def same(a, b) -> bool:
    """Bitwise equal: the same dtype, shape and bytes (NaN payloads included)."""
    if isinstance(a, float) or isinstance(b, float):
        return np.float64(a).tobytes() == np.float64(b).tobytes()
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# ------------------------------------------------------------------ the ABI ----

def capsule_names(module) -> dict:
    get = ctypes.pythonapi.PyCapsule_GetName
    get.restype, get.argtypes = ctypes.c_char_p, [ctypes.py_object]
    return {name: get(cap).decode() for name, cap in module.__pyx_capi__.items()}


def test_exported_signatures_are_frozen():
    assert capsule_names(api) == SIGNATURES


def test_constants_are_frozen(ds):
    assert ds.CONSTANTS == CONSTANTS
    assert api.API_VERSION == CONSTANTS["FL_API_VERSION"]
    assert api.STATUS == {k: v for k, v in CONSTANTS.items() if k == "FL_OK" or
                          k.startswith("FL_E")}
    assert api.MODES == {"value": 1, "value_and_grad": 3, "grad_hess": 6}
    assert api.REDUCTIONS == {"mean": 0, "sum": 1, "none": 2}
    assert api.SOFTMAX == {"ce_probs": CONSTANTS["FL_CROSS_ENTROPY_PROBS"],
                           "kl": CONSTANTS["FL_KL_DIVERGENCE"],
                           "kl_log": CONSTANTS["FL_KL_DIVERGENCE_LOG_TARGET"]}
    for status in range(5):
        assert ds.strerror(status) == api.strerror(status) != "unknown status"
    assert ds.strerror(99) == "unknown status"


def test_declarations_ship_with_the_package():
    """fastloss/api.pxd is installed next to the module (the wheel ships it) and
    fastloss.get_include() is the folder a build puts on Cython's include path for it."""
    pxd = Path(api.__file__).with_name("api.pxd")
    assert pxd.is_file()
    assert Path(fastloss.get_include(), "fastloss", "api.pxd").resolve() == pxd.resolve()
    text = pxd.read_text()
    for name in SIGNATURES:
        assert f"cdef {'const char*' if name == 'fl_strerror' else 'int'} {name}(" in text
    assert "cimport fastloss._kernels" not in text and "_kernels" not in text, \
        "api.pxd must not cimport internal declarations, which the wheel does not ship"


def test_runs_the_dispatched_level():
    assert api.level == _dispatch.kernels.level


def test_pointwise_table_matches_the_loss_table():
    """Every pointwise kernel has its public number, and what the C API reads for it (delta,
    pos_weight, count targets) is what its row in fastloss.losses declares."""
    table = {row["name"]: row for row in api.pointwise_table()}
    assert set(table) == set(_dispatch.kernels.pointwise.KERNELS), \
        "a pointwise kernel without a public number in fastloss/api.pxd (or one too many)"
    assert [row["id"] for row in api.pointwise_table()] == list(range(len(table)))
    assert {n: r["id"] for n, r in table.items()} == api.POINTWISE
    for name, row in table.items():
        assert CONSTANTS[f"FL_{name.upper()}".replace("KL_DIV_LOG", "KL_DIV_LOG_TARGET")] \
            == row["id"], name
    seen = set()
    for loss in LOSS_INSTANCES:
        if loss.family != "pointwise":
            continue
        row = table[loss._kernel_name()]
        seen.add(row["name"])
        assert row["delta"] == (loss.kernel_param is not None), loss
        assert row["pos_weight"] == (loss.broadcast_param is not None), loss
        assert row["count"] == (loss.target == "count"), loss
    assert seen == set(table), "a kernel that no loss of the table uses"


# ------------------------------------------------------------------ pointwise ----

def pointwise_case(loss, dtype, shape, rng, weights):
    x = input_for(loss, shape, rng, dtype)
    t = target_for(loss, x, rng)
    w = None
    if weights == "element":
        w = rng.uniform(0, 2, shape).astype(dtype)
    elif weights == "row":
        w = rng.uniform(0, 2, shape[:1]).astype(dtype)
    return x, t, w


def c_pointwise(ds, loss, mode, reduction, x, t, w=None, n_threads=1, xs=None, ts=None):
    """One fl_pointwise_* call for `loss` (a Python loss object) -> (status, value,
    per_sample, grad, hess); outputs start as NaN sentinels."""
    dtype = x.dtype
    n = x.size
    pw = loss._broadcast(dtype, x.shape)[0] if loss.broadcast_param else None
    value = np.full(1, np.nan)
    per_sample = np.full(n, np.nan, dtype)
    grad = np.full(n, np.nan, dtype)
    hess = np.full(n, np.nan, dtype)
    group = 1 if w is None or w.size == 0 else n // w.size
    status = ds.pointwise(
        dtype == np.float32, api.POINTWISE[loss._kernel_name()], MODES[mode],
        REDUCTIONS[reduction], n, addr(x), stride(x) if xs is None else xs, addr(t),
        stride(t) if ts is None else ts, addr(w), group, addr(pw),
        0 if pw is None else pw.size, loss._param, addr(value), addr(per_sample),
        addr(grad), addr(hess), n_threads)
    return status, value[0], per_sample.reshape(x.shape), grad.reshape(x.shape), \
        hess.reshape(x.shape)


def py_call(loss, mode, reduction, x, t, w, n_threads=1):
    return getattr(loss, METHODS[mode])(x, t, sample_weight=w, reduction=reduction,
                                        n_threads=n_threads)


def check_same(mode, reduction, c, py):
    status, value, per_sample, grad, hess = c
    assert status == OK, api.strerror(status)
    if mode == "value":
        py_value, py_grad, py_hess = py, None, None
    elif mode == "value_and_grad":
        (py_value, py_grad), py_hess = py, None
    else:
        py_value, (py_grad, py_hess) = None, py
    if py_value is not None:
        if reduction == "none":
            assert same(per_sample, py_value)
        else:
            assert same(value, py_value), (value, py_value)
    if py_grad is not None:
        assert same(grad, py_grad)
    if py_hess is not None:
        assert same(hess, py_hess)


POINTWISE = [loss for loss in LOSS_INSTANCES if loss.family == "pointwise"]


@pytest.mark.parametrize("loss", POINTWISE, ids=repr)
@pytest.mark.parametrize("dtype", DTYPES)
def test_pointwise_equals_the_python_api(ds, loss, dtype, rng):
    for shape, weights in (((37, 5), None), ((37, 5), "element"), ((37, 5), "row"),
                           ((3000,), None), ((0,), None), ((0,), "element")):
        x, t, w = pointwise_case(loss, dtype, shape, rng, weights)
        for mode in MODES:
            for reduction in REDUCTIONS:
                check_same(mode, reduction, c_pointwise(ds, loss, mode, reduction, x, t, w),
                           py_call(loss, mode, reduction, x, t, w))


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_pos_weight_over_the_last_axis(ds, from_logits, dtype, rng):
    """BinaryCrossEntropy's pos_weight of shape (C,): element i uses pos_weight[i % C]."""
    loss = fastloss.BinaryCrossEntropy(from_logits=from_logits,
                                       pos_weight=[0.5, 1.0, 2.0, 3.0, 0.0, 1.5, 4.0])
    x, t, w = pointwise_case(loss, dtype, (600, 7), rng, "row")
    for mode in MODES:
        for reduction in REDUCTIONS:
            check_same(mode, reduction, c_pointwise(ds, loss, mode, reduction, x, t, w),
                       py_call(loss, mode, reduction, x, t, w))


@pytest.mark.parametrize("loss", [fastloss.MSE(), fastloss.PoissonNLL(),
                                  fastloss.BinaryCrossEntropy()], ids=repr)
@pytest.mark.parametrize("dtype", DTYPES)
def test_pointwise_strides_and_threads(ds, loss, dtype, rng):
    """Strided input and target (0, negative, > 1), read in place by both APIs; a call large
    enough for several blocks and threads."""
    n = 70_001
    x, t, _ = pointwise_case(loss, dtype, (2 * n,), rng, None)
    for xv, tv in ((x[::2], t[1::2]), (x[::-1][:n], t[:n]), (x[:n], np.broadcast_to(t[5], (n,)))):
        for mode in MODES:
            for reduction in REDUCTIONS:
                for nt in (1, 2, 0, -1):
                    c = c_pointwise(ds, loss, mode, reduction, xv, tv, n_threads=nt)
                    check_same(mode, reduction, c, py_call(loss, mode, reduction, xv, tv,
                                                           None, 1))


# ------------------------------------------------------------------ softmax ----

SOFTMAX = [loss for loss in LOSS_INSTANCES if loss.family == "softmax" and loss.axis == -1]


def c_softmax(ds, loss, mode, reduction, x, target, w=None, n_threads=1, cw=None):
    """One fl_cross_entropy_* (integer target) or fl_softmax_* call for `loss` over the rows
    of a 2-D x (any row stride) -> (status, value, per_sample, grad, hess)."""
    dtype = x.dtype
    n_rows, n_cls = x.shape
    value = np.full(1, np.nan)
    per_sample = np.full(n_rows, np.nan, dtype)
    grad = np.full(x.shape, np.nan, dtype)
    hess = np.full(x.shape, np.nan, dtype)
    group = 1 if w is None or w.size == 0 else n_rows // w.size
    f32 = dtype == np.float32
    x_row = x.strides[0] // x.itemsize
    from_logits = int(loss.from_logits)
    if cw is None and getattr(loss, "class_weight", None) is not None:
        cw = loss._array("class_weight", dtype)
    smoothing = getattr(loss, "label_smoothing", 0.0)
    common = (addr(w), group, addr(value), addr(per_sample), addr(grad), addr(hess),
              n_threads)
    if target.dtype.kind in "iu":
        status = ds.cross_entropy(f32, MODES[mode], REDUCTIONS[reduction], n_rows, n_cls,
                                  addr(x), x_row, addr(target), from_logits, addr(cw),
                                  loss.ignore_index, smoothing, *common)
    else:
        name = {"CrossEntropy": "ce_probs"}.get(type(loss).__name__) or \
            ("kl_log" if loss.log_target else "kl")
        status = ds.softmax(f32, api.SOFTMAX[name], MODES[mode], REDUCTIONS[reduction],
                            n_rows, n_cls, addr(x), x_row, addr(target),
                            target.strides[0] // target.itemsize, from_logits, addr(cw),
                            smoothing, *common)
    return status, value[0], per_sample, grad, hess


def softmax_case(loss, dtype, shape, rng, weights, labels=True):
    x = input_for(loss, shape, rng, dtype)
    t = target_for(loss, x, rng, labels=labels)
    if labels and t.dtype.kind in "iu":
        t = t.astype(np.int64)
        if loss.ignore_index in (0,) and t.size:
            t[::7] = loss.ignore_index
    w = None
    if weights == "row":
        w = rng.uniform(0, 2, shape[:1]).astype(dtype)
    return x, t, w


#: class weights whose sum depends on the order of the additions (the C API sums them in
#: NumPy's order, as the Python loss does), and for float32 ones that float32 holds exactly
#: (the float32 C functions take them as float32, the Python loss as float64)
CLASS_WEIGHTS = {np.float64: np.random.default_rng(7).uniform(0, 3, 40)}
CLASS_WEIGHTS[np.float32] = CLASS_WEIGHTS[np.float64].astype(np.float32).astype(np.float64)
for _w in CLASS_WEIGHTS.values():
    _w[3] = 0.0


@pytest.mark.parametrize("loss", SOFTMAX + ["weighted"], ids=repr)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_cls", [5, 40])
def test_softmax_equals_the_python_api(ds, loss, dtype, n_cls, rng):
    if loss == "weighted":         # class weights, smoothing and ignore_index together
        loss = fastloss.CrossEntropy(class_weight=CLASS_WEIGHTS[dtype][:n_cls],
                                     label_smoothing=0.2,
                                     ignore_index=3)
    targets = (True, False) if loss.takes_labels else (False,)
    for labels in targets:
        for shape, weights in (((300, n_cls), None), ((300, n_cls), "row"), ((0, n_cls), None)):
            x, t, w = softmax_case(loss, dtype, shape, rng, weights, labels)
            if labels and loss.ignore_index == 3 and t.size:
                t[::5] = 3
            for mode in MODES:
                for reduction in REDUCTIONS:
                    check_same(mode, reduction,
                               c_softmax(ds, loss, mode, reduction, x, t, w),
                               py_call(loss, mode, reduction, x, t, w))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_row_strides_and_threads(ds, dtype, rng):
    """Rows a stride apart (a column slice of a wider array), read in place by both APIs;
    calls large enough for threads."""
    wide = rng.normal(size=(9000, 12)).astype(dtype)
    x = wide[:, 2:9]
    labels = rng.integers(0, 7, 9000)
    probs = rng.dirichlet(np.ones(7), 9000).astype(dtype)
    for loss, t in ((fastloss.CrossEntropy(label_smoothing=0.05), labels),
                    (fastloss.CrossEntropy(), probs), (fastloss.KLDivergence(), probs)):
        for mode in MODES:
            for reduction in REDUCTIONS:
                for nt in (1, 2):
                    check_same(mode, reduction, c_softmax(ds, loss, mode, reduction, x, t,
                                                          n_threads=nt),
                               py_call(loss, mode, reduction, x, t, None, nt))


# ------------------------------------------------------------------ from a prange ----

@pytest.mark.parametrize("dtype", DTYPES)
def test_calls_from_a_prange(ds, dtype, rng):
    """Every compute function called from the threads of a downstream prange, one batch per
    call on its calling thread (n_threads=1), equals the Python API over that batch."""
    n_batches, batch, n_cls = 24, 1000, 6
    f32 = dtype == np.float32
    cases = [(loss, mode) for loss in (fastloss.MSE(), fastloss.Huber(delta=0.5))
             for mode in ("value_and_grad", "grad_hess")]
    for loss, mode in cases:
        x = rng.normal(size=n_batches * batch).astype(dtype)
        t = rng.normal(size=n_batches * batch).astype(dtype)
        values, status = np.full(n_batches, np.nan), np.full(n_batches, -1, np.intc)
        grad, hess = np.full_like(x, np.nan), np.full_like(x, np.nan)
        ds.prange_pointwise(f32, api.POINTWISE[loss.kernel], MODES[mode], REDUCTIONS["mean"],
                            n_batches, batch, addr(x), addr(t), loss._param, addr(values),
                            addr(grad), addr(hess), addr(status), 4)
        assert (status == OK).all()
        for b in range(n_batches):
            s = slice(b * batch, (b + 1) * batch)
            py = py_call(loss, mode, "mean", x[s], t[s], None)
            check_same(mode, "mean", (OK, values[b], None, grad[s], hess[s]), py)
    for loss in (fastloss.CrossEntropy(label_smoothing=0.1), fastloss.KLDivergence()):
        x = rng.normal(size=(n_batches * batch, n_cls)).astype(dtype)
        if loss.takes_labels:
            t = rng.integers(0, n_cls, n_batches * batch)
        else:
            t = rng.dirichlet(np.ones(n_cls), n_batches * batch).astype(dtype)
        for mode in ("value_and_grad", "grad_hess"):
            values, status = np.full(n_batches, np.nan), np.full(n_batches, -1, np.intc)
            grad, hess = np.full_like(x, np.nan), np.full_like(x, np.nan)
            if loss.takes_labels:
                ds.prange_cross_entropy(f32, MODES[mode], REDUCTIONS["sum"], n_batches, batch,
                                        n_cls, addr(x), addr(t), loss.label_smoothing,
                                        addr(values), addr(grad), addr(hess), addr(status), 4)
            else:
                ds.prange_softmax(f32, api.SOFTMAX["kl"], MODES[mode], REDUCTIONS["sum"],
                                  n_batches, batch, n_cls, addr(x), addr(t), addr(values),
                                  addr(grad), addr(hess), addr(status), 4)
            assert (status == OK).all()
            for b in range(n_batches):
                s = slice(b * batch, (b + 1) * batch)
                py = py_call(loss, mode, "sum", x[s], t[s], None)
                check_same(mode, "sum", (OK, values[b], None, grad[s], hess[s]), py)


# ------------------------------------------------------------------ bad input ----

def untouched(c):
    """An error wrote nothing: every output still holds its NaN sentinel."""
    status, value, per_sample, grad, hess = c
    return np.isnan(value) and all(np.isnan(a).all() for a in (per_sample, grad, hess))


@pytest.mark.parametrize("dtype", DTYPES)
def test_pointwise_status_codes(ds, dtype, rng):
    f32 = dtype == np.float32
    x = rng.normal(size=50).astype(dtype)
    t = rng.normal(size=50).astype(dtype)
    out = [np.full(50, np.nan, dtype) for _ in range(3)]
    value = np.full(1, np.nan)

    def call(loss=api.POINTWISE["mse"], mode=MODES["value_and_grad"],
             reduction=REDUCTIONS["mean"], n=50, x=x, t=t, w=None, group=1, pw=None,
             pw_len=0, param=1.0, outputs=(value, *out), n_threads=1):
        v, p, g, h = outputs
        return ds.pointwise(f32, loss, mode, reduction, n, addr(x), 1, addr(t), 1, addr(w),
                            group, addr(pw), pw_len, param, addr(v), addr(p), addr(g),
                            addr(h), n_threads)

    assert call(loss=-1) == call(loss=len(api.POINTWISE)) == EBADARG
    assert call(mode=2) == call(mode=7) == call(reduction=3) == EBADARG
    assert call(n=-1) == call(x=None) == call(t=None) == call(n_threads=-2) == EBADARG
    assert call(outputs=(value, out[0], None, out[2])) == EBADARG           # no grad
    assert call(mode=MODES["grad_hess"], outputs=(value, out[0], out[1], None)) == EBADARG
    assert call(reduction=REDUCTIONS["none"], outputs=(value, None, *out[1:])) == EBADARG
    for delta in (0.0, -1.0, np.inf, np.nan):
        assert call(loss=api.POINTWISE["huber"], param=delta) == EBADARG
        assert call(loss=api.POINTWISE["pseudo_huber"], param=delta) == EBADARG
    ones = np.ones(5, dtype)
    assert call(pw=ones, pw_len=5) == EBADARG                               # MSE: no pw
    bce = api.POINTWISE["bce_logits"]
    assert call(loss=bce, pw=ones, pw_len=0) == EBADARG
    assert call(loss=bce, pw=-ones, pw_len=5) == EBADARG
    assert call(loss=bce, pw=np.full(5, np.inf, dtype), pw_len=5) == EBADARG
    w = np.ones(50, dtype)
    assert call(w=w, group=0) == call(w=w, group=3) == EBADARG              # 50 % 3 != 0
    for bad in (-1.0, np.nan, np.inf):
        wb = w.copy()
        wb[17] = bad
        assert call(w=wb) == EDATA
    neg = np.abs(t)
    neg[30] = -0.5
    assert call(loss=api.POINTWISE["poisson_nll"], t=neg) == EDATA
    assert np.isnan(value).all() and all(np.isnan(a).all() for a in out), "an error wrote"
    # valid edge cases: NULL arrays with n == 0, a NULL value, mean over zero weight
    assert call(n=0, x=None, t=None) == OK and value[0] == 0.0
    assert call(w=np.zeros(50, dtype), outputs=(value, None, out[1], out[2]),
                mode=MODES["grad_hess"]) == OK
    assert (out[1] == 0).all() and (out[2] == 0).all()
    assert call(outputs=(None, None, out[1], None)) == OK


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_status_codes(ds, dtype, rng):
    f32 = dtype == np.float32
    n, C = 20, 4
    x = rng.normal(size=(n, C)).astype(dtype)
    y = rng.integers(0, C, n)
    p = rng.dirichlet(np.ones(C), n).astype(dtype)
    value = np.full(1, np.nan)
    per_sample = np.full(n, np.nan, dtype)
    grad, hess = np.full((n, C), np.nan, dtype), np.full((n, C), np.nan, dtype)

    def ce(y=y, n_rows=n, n_cls=C, cw=None, smoothing=0.0, w=None, group=1, ignore=-100,
           mode=MODES["value_and_grad"], reduction=REDUCTIONS["mean"], x=x, grad=grad):
        return ds.cross_entropy(f32, mode, reduction, n_rows, n_cls, addr(x), C, addr(y), 1,
                                addr(cw), ignore, smoothing, addr(w), group, addr(value),
                                addr(per_sample), addr(grad), addr(hess), 1)

    def dense(loss=api.SOFTMAX["kl"], cw=None, smoothing=0.0, t=p, n_cls=C):
        return ds.softmax(f32, loss, MODES["value_and_grad"], REDUCTIONS["mean"], n, n_cls,
                          addr(x), C, addr(t), C, 1, addr(cw), smoothing, 0, 1, addr(value),
                          addr(per_sample), addr(grad), addr(hess), 1)

    bad_y = y.copy()
    bad_y[11] = C
    assert ce(y=bad_y) == ELABEL
    bad_y[11] = -1
    assert ce(y=bad_y) == ELABEL
    assert ce(y=None) == ce(n_cls=0) == ce(n_rows=-1) == ce(x=None) == ce(grad=None) == EBADARG
    assert ce(smoothing=-0.1) == ce(smoothing=1.5) == ce(smoothing=np.nan) == EBADARG
    assert ce(cw=np.array([1, 1, -1, 1], dtype)) == EBADARG
    assert ce(cw=np.array([1, 1, np.nan, 1], dtype)) == EBADARG
    assert ce(w=np.full(n, -1, dtype)) == EDATA
    assert ce(w=np.ones(n, dtype), group=3) == EBADARG                      # 20 % 3 != 0
    assert ce(mode=5) == ce(reduction=-1) == EBADARG
    assert dense(loss=-1) == dense(loss=len(api.SOFTMAX)) == dense(t=None) == EBADARG
    assert dense(cw=np.ones(C, dtype)) == dense(smoothing=0.1) == EBADARG   # KL: CE's only
    assert np.isnan(value).all() and np.isnan(per_sample).all()
    assert np.isnan(grad).all() and np.isnan(hess).all(), "an error wrote"
    # every row ignored: "mean" is 0 with a zero gradient
    assert ce(y=np.full(n, 2), ignore=2) == OK and value[0] == 0.0 and (grad == 0).all()
    assert dense(loss=api.SOFTMAX["ce_probs"], cw=np.ones(C, dtype), smoothing=0.1) == OK


# ------------------------------------------------------------------ every level ----

LEVEL_CHECK = textwrap.dedent("""
    import sys
    import numpy as np
    import fastloss, fastloss.api as api
    from fastloss import _dispatch
    sys.path.insert(0, sys.argv[1])
    import fl_downstream as ds
    level = sys.argv[2]
    assert api.level == _dispatch.kernels.level == level, (api.level, level)
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        x = rng.normal(size=(4001, 9)).astype(dtype)
        t = rng.normal(size=x.shape).astype(dtype)
        y = rng.integers(0, 9, 4001)
        a = lambda arr: arr.__array_interface__["data"][0]
        value, grad = np.zeros(1), np.empty_like(x)
        st = ds.pointwise(dtype == np.float32, api.POINTWISE["pseudo_huber"], 3, 0, x.size,
                          a(x), 1, a(t), 1, 0, 1, 0, 0, 0.7, a(value), 0, a(grad), 0, 1)
        v, g = fastloss.PseudoHuber(0.7).value_and_grad(x, t, n_threads=1)
        assert st == 0 and value[0] == v and grad.tobytes() == g.tobytes(), level
        st = ds.cross_entropy(dtype == np.float32, 3, 1, 4001, 9, a(x), 9, a(y), 1, 0, -100,
                              0.1, 0, 1, a(value), 0, a(grad), 0, 1)
        v, g = fastloss.CrossEntropy(label_smoothing=0.1).value_and_grad(
            x, y, reduction="sum", n_threads=1)
        assert st == 0 and value[0] == v and grad.tobytes() == g.tobytes(), level
    print("ok", level)
""")


@pytest.mark.parametrize("level", _dispatch.available())
def test_every_level(ds, level, tmp_path):
    """The C API binds the level fastloss._dispatch chose at import (FASTLOSS_SIMD selects
    a lower one): with each, it equals the Python API at that level."""
    script = tmp_path / "level_check.py"
    script.write_text(LEVEL_CHECK)
    env = dict(os.environ, FASTLOSS_SIMD=level)
    root = str(Path(fastloss.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    folder = str(Path(ds.__file__).parent)
    proc = subprocess.run([sys.executable, str(script), folder, level], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
