"""The row helpers of the softmax kernels at every instruction-set level: the row maximum
and its index (maxat.h), and the one-pass KL tile (kl_tile.h), which must give the same
bits as the tile loops it replaces."""
import numpy as np
import pytest

from fastloss import _dispatch

LANES = _dispatch.probes().LAYOUT["LANES"]
TILE = _dispatch.probes().LAYOUT["TILE"]


def max_at(x):
    return _dispatch.probes().max_at(np.ascontiguousarray(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_at_gives_the_maximum_and_an_index_that_holds_it(level, dtype, rng):
    for n in list(range(1, 70)) + [255, 256, 257, 1000, 1001, 4099]:
        x = rng.standard_normal(n).astype(dtype)
        for where in {0, n // 2, n - 1}:
            y = x.copy()
            y[where] = 10                               # a unique maximum anywhere
            assert max_at(y) == (10.0, where), (n, where)
        y = np.round(x)                                 # ties: the index holds the maximum
        m, i = max_at(y)
        assert m == y.max() and y[i] == m


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_at_edge_values(level, dtype):
    assert max_at(np.zeros(0, dtype)) == (-np.inf, -1)
    for n in (3, 16, 40):
        assert max_at(np.full(n, np.nan, dtype)) == (-np.inf, -1)      # only NaN: none
        assert max_at(np.full(n, -np.inf, dtype)) == (-np.inf, 0)
        x = np.full(n, -np.inf, dtype)
        x[n - 1] = np.nan
        assert max_at(x) == (-np.inf, 0)
        x = np.arange(n, dtype=dtype)
        x[0] = np.nan                                   # NaN skipped, or the max is NaN
        m, i = max_at(x)
        assert (m, i) == (n - 1, n - 1) or np.isnan(m)
        x[n - 1] = np.inf
        assert max_at(x) == (np.inf, n - 1)


def kl_tiles(z, t, m, top, with_e):
    e1 = np.zeros_like(z) if with_e else None
    e2 = np.zeros_like(z) if with_e else None
    sums = np.zeros(6 * LANES)
    _dispatch.probes().kl_tile_check(z, t, m, top, e1, e2, sums)
    return (e1, sums[:3 * LANES]), (e2, sums[3 * LANES:])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_pass_kl_tile_matches_the_tile_loops_bit_for_bit(level, dtype, rng):
    for n in (1, 15, 16, 17, 100, 232, 255, TILE):
        z = (3 * rng.standard_normal(n)).astype(dtype)
        t = rng.random(n).astype(dtype)
        t[rng.random(n) < 0.2] = 0                      # 0 log 0 = 0
        m = z.max()
        for top in sorted({int(np.argmax(z)), -5, n + 3}):
            for with_e in (True, False):
                (e1, s1), (e2, s2) = kl_tiles(z, t, m, top, with_e)
                np.testing.assert_array_equal(s1, s2)
                if with_e:
                    np.testing.assert_array_equal(e1, e2)
                    with np.errstate(all="ignore"):
                        np.testing.assert_allclose(e1, np.exp(z.astype(float) - m), rtol=1e-6)
                # the sums themselves, against float64
                T, A, B = (s1[k * LANES:(k + 1) * LANES].sum() for k in range(3))
                zd, td = z.astype(float), t.astype(float)
                with np.errstate(all="ignore"):
                    terms = np.where(td > 0, td * (np.log(td) - (zd - m)), 0.0)
                e = np.exp(zd - m)
                if 0 <= top < n:
                    e[top] -= 1
                np.testing.assert_allclose([T, A, B], [e.sum(), td.sum(), terms.sum()],
                                           rtol=1e-5, atol=1e-6)


def kind(v):
    return "nan" if np.isnan(v) else "inf" if np.isinf(v) else "finite"


# (z_i, t_i) -> what T, A, B become: NaN stays NaN, 0 log 0 = 0, a -inf logit with a
# positive target gives B = +inf (as the float64 formula does)
SPECIAL = [((np.nan, 0.5), ("nan", "finite", "nan")),
           ((-np.inf, 0.0), ("finite", "finite", "finite")),
           ((-np.inf, 0.3), ("finite", "finite", "inf")),
           ((0.0, np.nan), ("finite", "nan", "nan")),
           ((0.0, np.inf), ("finite", "inf", "inf")),
           ((0.0, -1.0), ("finite", "finite", "nan"))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("where", [3, 35])             # in a whole vector, in the tail
@pytest.mark.parametrize("values, expected", SPECIAL)
def test_one_pass_kl_tile_passes_nan_and_infinities_like_the_tile_loops(level, dtype, where,
                                                                         values, expected):
    n = 37
    z = np.linspace(-3, 0, n).astype(dtype)
    t = np.linspace(0, 1, n).astype(dtype)
    z[where], t[where] = values
    (e1, s1), (e2, s2) = kl_tiles(z, t, 0.0, n - 1, True)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(e1, e2)
    with np.errstate(invalid="ignore"):
        sums = [s1[j * LANES:(j + 1) * LANES].sum() for j in range(3)]
    assert tuple(kind(v) for v in sums) == expected
