"""The vectorized exp / log / log1p of every kernel build (vecmath.h) against NumPy and
mpmath: a documented error bound over millions of points across the whole range, and exact
results for NaN, infinities, zeros, subnormals and the overflow/underflow edges."""
import mpmath
import numpy as np
import pytest

from fastloss import _dispatch

MAX_ULP = 1.5           # the bound vecmath.h documents (measured: about 1.15)
FUNCS = {"exp": np.exp, "log": np.log, "log1p": np.log1p,
         "log_n": np.log}       # log a tile at a time: AVX-512 has its own decomposition


def run(fn, x):
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    _dispatch.probes().vector_math(fn, x, out)
    return out


def ulp_error(got, exact, dtype):
    """|got - exact| in units of the spacing of `dtype` at `exact` (exact in float64 or
    better); subnormal results are measured in subnormal spacing."""
    exact = np.asarray(exact, dtype=np.float64)
    spacing = np.spacing(np.abs(exact).astype(dtype)).astype(np.float64)
    return np.abs(got.astype(np.float64) - exact) / spacing


def random_bits(dtype, n, rng):
    """Uniformly random bit patterns: every exponent, sign and subnormal equally likely."""
    itype = np.uint32 if dtype == np.float32 else np.uint64
    return rng.integers(0, np.iinfo(itype).max, n, dtype=itype, endpoint=True).view(dtype)


@pytest.mark.parametrize("fn", ["exp", "log", "log1p", "log_n"])
def test_float32_against_numpy_float64_over_millions_of_points(level, fn, rng):
    x = random_bits(np.float32, 4_000_000, rng)
    if fn == "exp":
        x = np.concatenate([x, np.linspace(-110, 95, 2_000_000, dtype=np.float32)])
    elif fn == "log1p":
        x = np.concatenate([x, np.linspace(-1, 1, 2_000_000, dtype=np.float32)])
    else:
        x = np.concatenate([x, np.linspace(0, 4, 2_000_000, dtype=np.float32)])
    with np.errstate(all="ignore"):
        exact = FUNCS[fn](x.astype(np.float64))     # float64 is exact enough for float32
    got = run(fn, x)
    finite = np.isfinite(exact) & (np.abs(exact) <= np.finfo(np.float32).max)
    assert ulp_error(got[finite], exact[finite], np.float32).max() <= MAX_ULP
    same = ~finite                          # NaN, infinities, overflow to inf
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(got[same], exact[same].astype(np.float32))


@pytest.mark.parametrize("fn", ["exp", "log", "log1p", "log_n"])
def test_float64_against_numpy_over_millions_of_points(level, fn, rng):
    """NumPy's float64 functions are accurate to about 1 ulp themselves: allow both."""
    x = random_bits(np.float64, 2_000_000, rng)
    lo, hi = {"exp": (-750, 712), "log": (0, 10), "log1p": (-1, 3), "log_n": (0, 10)}[fn]
    x = np.concatenate([x, np.linspace(lo, hi, 2_000_000)])
    with np.errstate(all="ignore"):
        want = FUNCS[fn](x)
    got = run(fn, x)
    finite = np.isfinite(want)
    assert ulp_error(got[finite], want[finite], np.float64).max() <= MAX_ULP + 1
    np.testing.assert_array_equal(got[~finite], want[~finite])


@pytest.mark.parametrize("fn", ["exp", "log", "log1p", "log_n"])
def test_float64_against_mpmath(level, fn, rng):
    mpmath.mp.dps = 40
    lo, hi = {"exp": (-745, 709.7), "log": (-700, 700), "log1p": (-40, 5), "log_n": (-700, 700)}[fn]
    e = rng.uniform(lo, hi, 4000)
    if fn == "exp":
        x = e
        exact = [mpmath.exp(mpmath.mpf(v)) for v in x]
    elif fn in ("log", "log_n"):
        x = np.exp(e)                       # log of values spread over every exponent
        exact = [mpmath.log(mpmath.mpf(v)) for v in x]
    else:
        x = np.concatenate([np.exp(e), -rng.uniform(0, 1, 1000), rng.uniform(-1e-6, 1e-6, 500)])
        exact = [mpmath.log1p(mpmath.mpf(v)) for v in x]
    exact = np.array([float(v) for v in exact])
    got = run(fn, x)
    nonzero = exact != 0
    assert ulp_error(got[nonzero], exact[nonzero], np.float64).max() <= MAX_ULP
    assert np.all(got[~nonzero] == 0)


def test_float32_log_of_targets_every_mantissa(level, rng):
    """The log of KL divergence targets (vlog_n_where_nonzero; on AVX2 a table log of its
    own, 8 intervals of the mantissa): every float32 mantissa at exponents -1, 0 and 1 and
    random bit patterns, with values that are not positive normal (subnormal, negative,
    infinite, NaN), which send their tile through the exact path too, at random places
    among them: every nonzero value's log to the bound, the special ones exactly as NumPy's;
    zeros may give any value (the caller weighs them by 0).  (A sign flipped in one entry
    of the AVX2 tables' low parts fails it.)"""
    mantissas = np.arange(2**23, dtype=np.uint32)
    x = np.concatenate([((126 + k) << 23 | mantissas).view(np.float32) for k in range(3)]
                       + [random_bits(np.float32, 2_000_000, rng)])
    x[rng.integers(0, x.size, 1000)] = rng.choice(np.array(
        [np.nan, np.inf, -np.inf, -0.5, 1e-40, -1e-40, 0.0, -0.0], dtype=np.float32), 1000)
    got = run("log_nonzero", x)
    nonzero = x != 0
    with np.errstate(all="ignore"):
        exact = np.log(x.astype(np.float64))
    finite = nonzero & np.isfinite(exact)
    assert ulp_error(got[finite], exact[finite], np.float32).max() <= MAX_ULP
    np.testing.assert_array_equal(got[nonzero & ~finite], exact[nonzero & ~finite].astype(np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values(level, dtype):
    """NaN, infinities and signed zeros exactly as IEEE 754 / NumPy; the extremes of the
    range (largest, smallest normal, subnormals) within the error bound."""
    info = np.finfo(dtype)
    exact = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0, -info.max, -info.smallest_subnormal],
                     dtype=dtype)
    extreme = np.array([info.max, info.tiny, info.smallest_subnormal, 1.0, -0.5], dtype=dtype)
    with np.errstate(all="ignore"):
        for fn, ref in FUNCS.items():
            special = exact[exact != -1] if fn == "exp" else exact      # log(-1): NaN, log1p(-1): -inf
            got, want = run(fn, special), ref(special)
            np.testing.assert_array_equal(got, want, err_msg=fn)
            assert np.array_equal(np.signbit(got[~np.isnan(want)]), np.signbit(want[~np.isnan(want)]))
            got = run(fn, extreme)
            want = ref(extreme.astype(np.float64))
            ok = np.isfinite(want) & (np.abs(want) <= info.max)
            assert ulp_error(got[ok], want[ok], dtype).max() <= MAX_ULP + 1, fn
            np.testing.assert_array_equal(got[~ok], want[~ok].astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_overflow_and_underflow_edges(level, dtype):
    """Around the largest finite result and through the subnormal range to zero."""
    if dtype == np.float32:
        hi = np.float32(88.72283)
        lo = np.float32(-103.97207)
    else:
        hi, lo = 709.782712893384, -745.1332191019411
    x = np.concatenate([np.nextafter(hi, np.inf, dtype=dtype) + np.arange(-50, 50, dtype=dtype) * np.spacing(hi),
                        np.linspace(lo - 2, lo + 20, 20001).astype(dtype)]).astype(dtype)
    with np.errstate(all="ignore"):
        want = np.exp(x.astype(np.float64))
        got = run("exp", x)
    finite = want <= np.finfo(dtype).max
    assert np.all(np.isinf(got[~finite]))
    assert ulp_error(got[finite], want[finite], dtype).max() <= MAX_ULP


def test_log1p_on_the_unit_interval(level, rng):
    """The fast log1p for u in [0, 1] that the logistic loss uses."""
    for dtype in (np.float32, np.float64):
        u = np.concatenate([rng.uniform(0, 1, 1_000_000), np.exp(rng.uniform(-700, 0, 100_000)),
                            [0.0, 1.0, np.nan]]).astype(dtype)
        got = run("log1p_unit", u)
        want = np.log1p(u.astype(np.float64))
        ok = ~np.isnan(want) & (want != 0)
        assert ulp_error(got[ok], want[ok], dtype).max() <= MAX_ULP + (dtype == np.float64)
        assert np.isnan(got[-1]) and got[-3] == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logistic_parts(level, dtype, rng):
    """The stage of BCE with logits (vecmath.h's fl_logistic_parts), for x of both signs
    through the underflow of exp(-|x|), and NaN, infinities and zeros: e = exp(-|x|) is the
    level's exp bit for bit (float: the tile exp, a table method with AVX2 and AVX-512;
    double: exp_nonpos), d = 1 / (1 + e) rounded once, and L = log1p(e) to the bound
    (with AVX2 and AVX-512 a table log of 1 + e less the rounding of 1 + e, not the
    division form of log1p_unit)."""
    x = nonpos_points(dtype, rng)
    x = np.concatenate([x, -x])
    e, d, L = (np.empty_like(x) for _ in range(3))
    _dispatch.probes().logistic_parts(x, e, d, L)
    bits = np.uint32 if dtype == np.float32 else np.uint64
    number = ~np.isnan(x)
    want_e = run("exp_n" if dtype == np.float32 else "exp_nonpos", -np.abs(x))
    np.testing.assert_array_equal(e[number].view(bits), want_e[number].view(bits))
    np.testing.assert_array_equal(d[number].view(bits),
                                  (dtype(1) / (dtype(1) + e[number])).view(bits))
    exact = np.log1p(e.astype(np.float64))          # float64: NumPy's own 1 ulp allowed
    ok = number & (exact != 0)
    assert ulp_error(L[ok], exact[ok], dtype).max() <= MAX_ULP + (dtype == np.float64)
    assert np.all(L[number & (e == 0)] == 0)
    assert np.all(np.isnan(e[~number]) & np.isnan(d[~number]) & np.isnan(L[~number]))
    inf = np.isinf(x)
    assert inf.sum() == 2 and np.all(e[inf] == 0) and np.all(d[inf] == 1) and np.all(L[inf] == 0)
    zero = x == 0
    assert np.all(e[zero] == 1) and np.all(d[zero] == 0.5)
    assert np.all(np.abs(L[zero] - np.log(2)) <= np.spacing(dtype(np.log(2))))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_nonpos_is_exp_bit_for_bit(level, dtype, rng):
    """The cheaper exp for x <= 0 (and NaN) of the pointwise losses: exactly fl_exp's
    results, through the subnormal range to zero."""
    x = nonpos_points(dtype, rng)
    got, want = run("exp_nonpos", x), run("exp", x)
    bits = np.uint32 if dtype == np.float32 else np.uint64
    number = ~np.isnan(x)
    np.testing.assert_array_equal(got[number].view(bits), want[number].view(bits))
    assert np.all(np.isnan(got[~number]))
    with np.errstate(invalid="ignore"):                # signalling NaNs among the bits
        exact = np.exp(x.astype(np.float64))
    ok = number & (exact != 0)
    assert ulp_error(got[ok], exact[ok], dtype).max() <= MAX_ULP + (dtype == np.float64)


# the float tile exp's table at each level (vecmath.h), with GCC and Clang
EXP_TABLES = {"baseline": 0, "avx2": 8, "avx512": 16}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_exp_a_tile_and_a_value_at_a_time(level, dtype, rng):
    """The softmax's exp(z - max z), a tile at a time ("exp_n", in vectors) and one value at
    a time ("exp_tile", for the kernels' single values and leftover rows): the same bits,
    within the bound through the subnormal range to zero.  float32 with AVX2 and AVX-512
    uses a table (8 / 16 entries), elsewhere it is exp_nonpos's polynomial, bit for bit."""
    probes = _dispatch.probes()
    table = probes.EXP_TABLE
    if level in EXP_TABLES:             # MSVC builds have no vector operators: no table
        assert table == (EXP_TABLES[level] if probes.VECTOR_OPERATORS else 0)
    x = nonpos_points(dtype, rng)
    tile, one = run("exp_n", x), run("exp_tile", x)
    bits = np.uint32 if dtype == np.float32 else np.uint64
    number = ~np.isnan(x)
    np.testing.assert_array_equal(tile[number].view(bits), one[number].view(bits))
    assert np.all(np.isnan(tile[~number])) and np.all(np.isnan(one[~number]))
    poly = run("exp_nonpos", x)
    same = np.array_equal(tile[number].view(bits), poly[number].view(bits))
    assert same == (dtype == np.float64 or table == 0)
    with np.errstate(invalid="ignore"):
        exact = np.exp(x.astype(np.float64))
    ok = number & (exact != 0)
    assert ulp_error(tile[ok], exact[ok], dtype).max() <= MAX_ULP + (dtype == np.float64)
    np.testing.assert_array_equal(tile[exact == 0], 0)      # -inf (and float64 below -745)
    assert tile[x == 0].view(bits).tolist() == [np.array(1, dtype).view(bits)] * int(np.sum(x == 0))


def test_softmax_exp_over_every_short_length_and_in_place(level, rng):
    """The tile exp runs its whole vectors two at a time, a step apart (vecmath.h's
    fl_exp_shift_vectors_f32), then one more vector and a partial one: every length up to
    six 16-value vectors gives exp_tile's bits in every place, writes nothing past the
    end, and gives the same bits in place (out is z: wide_sums may write e over the
    logits)."""
    probes = _dispatch.probes(level)
    for dtype in (np.float32, np.float64):
        bits = np.uint32 if dtype == np.float32 else np.uint64
        x = -rng.exponential(4.0, 6 * 16 + 1).astype(dtype)
        x[::7] = 0.0
        want = run("exp_tile", x)
        for n in range(len(x) + 1):
            out = np.full(len(x) + 16, 7.0, dtype)
            probes.vector_math("exp_n", np.ascontiguousarray(x[:n]), out[:n])
            np.testing.assert_array_equal(out[:n].view(bits), want[:n].view(bits),
                                          err_msg=f"n = {n}")
            assert np.all(out[n:] == 7.0), f"n = {n}: wrote past the end"
            inplace = x[:n].copy()
            probes.vector_math("exp_n", inplace, inplace)
            np.testing.assert_array_equal(inplace.view(bits), want[:n].view(bits),
                                          err_msg=f"n = {n}, in place")


def nonpos_points(dtype, rng):
    """x <= 0: random bit patterns (every exponent), a fine grid down past the underflow to
    0, and the special values."""
    info = np.finfo(dtype)
    lo = -110.0 if dtype == np.float32 else -750.0
    return np.concatenate([-np.abs(random_bits(dtype, 2_000_000, rng)),
                           np.linspace(lo, 0, 2_000_001, dtype=dtype),
                           np.array([0.0, -0.0, -np.inf, np.nan, -info.tiny,
                                     -info.smallest_subnormal, -info.max], dtype=dtype)])
