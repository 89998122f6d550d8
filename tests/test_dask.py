"""fastloss.dask: per-chunk accumulators merged in a tree equal the in-memory call (bitwise
at 4096-row chunks, 1e-13 otherwise), with the same bits for every split_every and
scheduler, on threads and on a 2-worker process cluster (issue 14)."""
import numpy as np
import pytest

import fastloss
from conftest import LOSS_INSTANCES, input_for, target_for

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
fdask = pytest.importorskip("fastloss.dask")

N = 3 * 4096 + 517


def data(loss, n, rng, weighted=True, classes=5):
    """2-D input with samples on axis 0 (or 1 for classes on axis 0), target, weights."""
    rows_last = loss.family == "softmax" and loss.axis % 2 == 0
    shape = (classes, n) if rows_last else (n, classes if loss.family == "softmax" else 3)
    x = input_for(loss, shape, rng)
    t = target_for(loss, x, rng)
    w = rng.uniform(0, 2, n) if weighted else None
    return x, t, w, rows_last


def chunked(x, t, w, rows_last, rows):
    """Dask arrays of x, t, w with `rows` samples per chunk (target and weights get
    other chunks on purpose: evaluate rechunks them to the input's)."""
    xc = (-1, rows) if rows_last else (rows, -1)
    dx = da.from_array(x, chunks=xc)
    dt = da.from_array(t, chunks=1000 if t.ndim == 1 else ((-1, 999) if rows_last else (999, 2)))
    dw = None if w is None else da.from_array(w, chunks=1500)
    return dx, dt, dw


@pytest.mark.parametrize("loss", LOSS_INSTANCES, ids=repr)
def test_evaluate_equals_the_in_memory_call(loss):
    rng = np.random.default_rng(4)
    x, t, w, rows_last = data(loss, N, rng)
    for reduction in ("mean", "sum"):
        want = loss(x, t, sample_weight=w, reduction=reduction)
        dx, dt, dw = chunked(x, t, w, rows_last, 4096)
        values = {fdask.evaluate(loss, dx, dt, dw, reduction, split_every=s)
                  .compute(scheduler="threads") for s in (None, 2, 3)}
        assert values == {want}, reduction
        dx, dt, dw = chunked(x, t, w, rows_last, 1000)
        values = {fdask.evaluate(loss, dx, dt, dw, reduction, split_every=s)
                  .compute(scheduler=sched)
                  for s in (2, 5, 16) for sched in ("threads", "sync")}
        assert len(values) == 1, values
        np.testing.assert_allclose(values.pop(), want, rtol=1e-13, atol=0)


def test_evaluate_is_lazy_and_computes_a_float():
    rng = np.random.default_rng(0)
    # row chunks of 4096 (the last shorter): the in-memory call's bits (docs/contract.md)
    x = da.from_array(rng.normal(size=(5000, 3)), chunks=(4096, 3))
    value = fdask.evaluate(fastloss.MSE(), x, da.zeros_like(x))
    assert isinstance(value, da.Array) and value.shape == () and value.dtype == np.float64
    got = value.compute()
    assert float(got) == fastloss.MSE()(x.compute(), np.zeros((5000, 3)))
    # NumPy arrays work as one chunk
    assert float(fdask.evaluate(fastloss.MSE(), x.compute(), np.zeros((5000, 3))).compute()) \
        == float(got)


@pytest.mark.parametrize("loss", [fastloss.MSE(), fastloss.PoissonNLL(),
                                  fastloss.CrossEntropy(label_smoothing=0.1),
                                  fastloss.CrossEntropy(axis=0, ignore_index=0),
                                  fastloss.KLDivergence(from_logits=False),
                                  fastloss.BinaryCrossEntropy(pos_weight=2.0)], ids=repr)
@pytest.mark.parametrize("weighted", [False, True])
def test_value_and_grad_equals_the_in_memory_gradient(loss, weighted):
    rng = np.random.default_rng(9)
    x, t, w, rows_last = data(loss, N, rng, weighted=weighted)
    for reduction in ("mean", "sum"):
        want_v, want_g = loss.value_and_grad(x, t, sample_weight=w, reduction=reduction)
        dx, dt, dw = chunked(x, t, w, rows_last, 4096)
        value, grad = fdask.value_and_grad(loss, dx, dt, dw, reduction)
        assert grad.chunks == dx.chunks
        v, g = dask.compute(value, grad, scheduler="threads")
        assert v == want_v
        np.testing.assert_array_equal(g, want_g)
        dx, dt, dw = chunked(x, t, w, rows_last, 1000)
        v, g = dask.compute(*fdask.value_and_grad(loss, dx, dt, dw, reduction, 4))
        np.testing.assert_allclose(v, want_v, rtol=1e-13)
        if weighted:
            np.testing.assert_allclose(g, want_g, rtol=1e-13, atol=0)
        else:                                   # the denominator is a count: exact
            np.testing.assert_array_equal(g, want_g)


def test_nothing_to_average_gives_zero_value_and_gradient():
    x = da.from_array(np.full((10, 4), np.nan), chunks=(3, 4))
    t = da.from_array(np.full(10, 2), chunks=3)
    value, grad = fdask.value_and_grad(fastloss.CrossEntropy(ignore_index=2), x, t)
    assert value.compute() == 0.0 and np.all(grad.compute() == 0)


def test_float32_input_gives_a_float32_gradient():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(9000, 4)).astype(np.float32)
    t = rng.integers(0, 4, 9000)
    value, grad = fdask.value_and_grad(fastloss.CrossEntropy(),
                                       da.from_array(x, chunks=(4096, 4)), t)
    assert grad.dtype == np.float32
    want_v, want_g = fastloss.CrossEntropy().value_and_grad(x, t)
    assert value.compute() == want_v
    np.testing.assert_array_equal(grad.compute(), want_g)


def test_classes_split_over_chunks_are_refused():
    x = da.zeros((100, 6), chunks=(50, 3))
    with pytest.raises(ValueError, match="must sit in one chunk"):
        fdask.evaluate(fastloss.CrossEntropy(), x, da.zeros(100, dtype=int, chunks=50))
    # a pointwise loss takes any chunks
    assert fdask.evaluate(fastloss.MSE(), x, x).compute() == 0.0


def test_bad_arguments_raise_when_the_graph_is_built():
    x = da.zeros((100, 3), chunks=50)
    with pytest.raises(ValueError, match="target shape"):
        fdask.evaluate(fastloss.MSE(), x, da.zeros((100, 4)))
    with pytest.raises(ValueError, match="sample_weight"):
        fdask.evaluate(fastloss.MSE(), x, x, da.ones(99))
    with pytest.raises(ValueError, match="reduction"):
        fdask.evaluate(fastloss.MSE(), x, x, reduction="none")
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        fdask.evaluate(fastloss.MSE(), x[x[:, 0] > 0], x[x[:, 0] > 0])
    with pytest.raises(TypeError, match="fastloss loss"):
        fdask.evaluate("mse", x, x)


def test_a_bad_chunk_raises_the_losses_error():
    x = da.zeros((100, 3), chunks=(50, 3))
    t = da.from_array(np.r_[np.zeros(99, int), 7], chunks=50)
    with pytest.raises(ValueError, match="not a class index"):
        fdask.evaluate(fastloss.CrossEntropy(), x, t).compute()


# ------------------------------------------------------------------ distributed ----

@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, worker_dashboard_address=None,
                                  silence_logs=40) as cluster, \
            distributed.Client(cluster) as c:
        c.run(lambda: __import__("fastloss.dask"))          # warm the workers' imports
        yield c


def test_two_worker_process_cluster(client):
    """Equal to the in-memory call; the same bits on 1 worker and on 2, for every
    split_every, as on the threaded scheduler; the gradient too."""
    loss = fastloss.CrossEntropy(class_weight=np.arange(1.0, 6), label_smoothing=0.1)
    rng = np.random.default_rng(8)
    x, t, w, rows_last = data(loss, 5 * 4096 + 99, rng)
    want = loss(x, t, sample_weight=w)
    aligned = chunked(x, t, w, rows_last, 4096)
    odd = chunked(x, t, w, rows_last, 1000)
    one_worker = [next(iter(client.scheduler_info()["workers"]))]
    futures = [client.compute(fdask.evaluate(loss, *aligned, split_every=2),
                              workers=one_worker)]
    futures += client.compute([fdask.evaluate(loss, *aligned, split_every=s) for s in (2, 4)])
    futures += client.compute([fdask.evaluate(loss, *odd, split_every=s) for s in (2, 3, 8)])
    futures += [client.compute(fdask.evaluate(loss, *odd, split_every=3), workers=one_worker)]
    value, grad = fdask.value_and_grad(loss, *aligned)
    v, g = client.compute([value, grad], sync=True)
    results = [float(f.result()) for f in futures]
    assert set(results[:3]) == {want}
    assert len(set(results[3:])) == 1
    assert results[3] == float(fdask.evaluate(loss, *odd).compute(scheduler="threads"))
    np.testing.assert_allclose(results[3], want, rtol=1e-13)
    want_v, want_g = loss.value_and_grad(x, t, sample_weight=w)
    assert v == want_v
    np.testing.assert_array_equal(g, want_g)
