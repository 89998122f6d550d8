"""Fit the polynomial coefficients of src/fastloss/_kernels/vecmath.h (a developer tool).

    python tools/fit_vecmath.py          # about two minutes; prints hex-float coefficients

Each polynomial is a minimax fit (Remez exchange, in mpmath at 60 digits) of the relative
error of the function it approximates, rounded to the target precision:

* exp:  exp(r) = 1 + r + r^2 q(r) on |r| <= ln(2)/2;   q(r) = (exp(r) - 1 - r) / r^2,
        degree 9 for float64, 4 for float32.
* the softmax's float table exp (fl_exp_tile_f32): the same q on |r| <= ln(2)/2N, degree 2
        for N = 8 (AVX2), 1 for N = 16 (AVX-512); and its tables (printed first): the bits
        of 2^(j/N + 100) rounded to float, less j 2^(23 - log2 N).
* log:  log(1 + f) = 2s + s z Q(z), s = f / (2 + f), z = s^2, on z <= ((sqrt2 - 1)/(sqrt2 + 1))^2;
        Q(z) = (2 atanh(s) / s - 2) / z, degree 6 for float64, 2 for float32.
* the AVX-512 float log (fl_log_v16f): log1p(r) = r + r^2 P(r) on -1/32 <= r <= 1/16,
        P(r) = (log1p(r) - r) / r^2, degree 3; and its tables (printed first): for each of
        16 intervals of m in [0.75, 1.5), c = 1 / (its middle) rounded to float (1 next to
        m = 1), and log(1 / c) split into a multiple of 2^-17 and a float remainder.
* the AVX2 float log (fl_vlog_pos_normal_f32): the same on -0.0583 <= r <= 0.0624, with 8
        intervals of m in [sqrt(1/2), sqrt(2)) and c a multiple of 1/16 below 1 (1/32
        above), so that m c - 1 is a float (r exact); its tables are printed too.

The printed error is that of the polynomial alone (before rounding of its coefficients);
the functions' total error is measured by tests/test_vecmath.py.
"""
import mpmath as mp
import numpy as np

mp.mp.dps = 60


def remez(f, a, b, deg, iters=30, grid=4000):
    """Coefficients (low to high) of the degree-`deg` polynomial minimising the maximum
    relative error |(f - p) / f| on [a, b], and that error."""
    n = deg + 2
    xs = [(a + b) / 2 + (b - a) / 2 * mp.cos(mp.pi * (n - 1 - i) / (n - 1)) for i in range(n)]
    coeffs, max_err = None, None
    for _ in range(iters):
        A = mp.matrix(n, n)
        rhs = mp.matrix(n, 1)
        for i, x in enumerate(xs):
            for j in range(deg + 1):
                A[i, j] = x**j
            A[i, deg + 1] = (-1) ** i * f(x)            # equioscillating relative error
            rhs[i] = f(x)
        sol = mp.lu_solve(A, rhs)
        coeffs = [sol[j] for j in range(deg + 1)]
        grid_x = [a + (b - a) * k / grid for k in range(grid + 1)]
        errs = [(f(x) - sum(c * x**j for j, c in enumerate(coeffs))) / f(x) for x in grid_x]
        max_err = max(abs(e) for e in errs)
        # new reference: the local extrema, alternating in sign
        ext = [0] + [k for k in range(1, grid) if (errs[k] - errs[k - 1]) * (errs[k + 1] - errs[k]) <= 0]
        ext.append(grid)
        alt = []
        for k in ext:
            if alt and mp.sign(errs[k]) == mp.sign(errs[alt[-1]]):
                if abs(errs[k]) > abs(errs[alt[-1]]):
                    alt[-1] = k
            else:
                alt.append(k)
        while len(alt) > n:
            alt.pop(0 if abs(errs[alt[0]]) < abs(errs[alt[-1]]) else -1)
        if len(alt) < n:
            break
        xs = [grid_x[k] for k in alt]
    return coeffs, max_err


def q_exp(r):
    if abs(r) < mp.mpf("1e-25"):
        return mp.mpf(1) / 2 + r / 6
    return (mp.exp(r) - 1 - r) / r**2


def q_log(z):
    if z < mp.mpf("1e-40"):
        return mp.mpf(2) / 3 + 2 * z / 5
    s = mp.sqrt(z)
    return (2 * mp.atanh(s) / s - 2) / z


def q_log1p(r):
    if abs(r) < mp.mpf("1e-40"):
        return -mp.mpf(1) / 2 + r / 3
    return (mp.log1p(r) - r) / r**2


def log_tables():
    """fl_log_inv_f32, fl_log_hi_f32, fl_log_lo_f32: interval i of m in [0.75, 1.5) is the
    one whose float bits have i as bits 19-22 (1 + i/16 .. for i < 8, 0.5 + i/32 .. above)."""
    inv, hi, lo = [], [], []
    for i in range(16):
        start, width = (1 + i / 16, 1 / 16) if i < 8 else (0.5 + i / 32, 1 / 32)
        c = np.float32(1) if i in (0, 15) else np.float32(1 / (start + width / 2))
        logc = -mp.log(mp.mpf(float(c)))
        h = float(mp.nint(logc * 2**17)) / 2**17
        inv.append(float(c))
        hi.append(h)
        lo.append(float(np.float32(float(logc - h))))
    return inv, hi, lo


def log8_tables():
    """fl_log8_inv_f32, fl_log8_hi_f32, fl_log8_lo_f32 and the range of r: interval i of m
    in [sqrt(1/2), sqrt(2)) is the one whose float bits less those of sqrt(1/2) have i as
    bits 20-22.  c = 1 on the interval around 1; elsewhere the multiple of 1/16 (below 1)
    or 1/32 (above) that makes max |m c - 1| least: with |m c - 1| < 1/16, m c - 1 is then
    a multiple of 2^-28 below 2^-4, a float."""
    inv, hi, lo, r_lo, r_hi = [], [], [], 0.0, 0.0
    for i in range(8):
        a = float(np.uint32(0x3F3504F3 + i * 2**20).view(np.float32))
        b = float(np.uint32(0x3F3504F3 + (i + 1) * 2**20 - 1).view(np.float32))
        q = 32 if a >= 1 else 16
        cands = [j / q for j in range(int(q / b) - 2, int(q / a) + 3)]
        c = 1.0 if a <= 1 <= b else min(cands, key=lambda c: max(abs(a * c - 1), abs(b * c - 1)))
        assert max(abs(a * c - 1), abs(b * c - 1)) < 1 / 16
        logc = -mp.log(mp.mpf(c))
        h = float(mp.nint(logc * 2**17)) / 2**17
        inv.append(c)
        hi.append(h)
        lo.append(float(np.float32(float(logc - h))))
        r_lo, r_hi = min(r_lo, a * c - 1), max(r_hi, b * c - 1)
    return inv, hi, lo, r_lo, r_hi


def exp_tables():
    """fl_exp_tab_f32 for N = 8 and 16: entry j is the bits of 2^(j/N + 100), correctly
    rounded to float, less j 2^(23 - log2 N) (vecmath.h adds k 2^(23 - log2 N))."""
    tables = {}
    for N, B in ((8, 3), (16, 4)):
        entries = []
        for j in range(N):
            with mp.workprec(24):                       # float's precision: rounded once
                v = +(mp.mpf(2) ** (mp.mpf(j) / N + 100))
            bits = int(np.array(float(v), np.float32).view(np.uint32))
            entries.append(bits - (j << (23 - B)))
        tables[N] = entries
    return tables


def main():
    for name, values in zip(("inv", "hi", "lo"), log_tables()):
        print(f"fl_log_{name}_f32:", ", ".join(f"{v.hex()}f" for v in values))
    *tables8, r_lo, r_hi = log8_tables()
    for name, values in zip(("inv", "hi", "lo"), tables8):
        print(f"fl_log8_{name}_f32:", ", ".join(f"{v.hex()}f" for v in values))
    for N, entries in exp_tables().items():
        print(f"fl_exp_tab_f32, N = {N}:", ", ".join(f"0x{e:08x}u" for e in entries))
    half_ln2 = mp.log(2) / 2 * mp.mpf("1.0001")
    smax = (mp.sqrt(2) - 1) / (mp.sqrt(2) + 1)
    zmax = smax**2 * mp.mpf("1.0001")
    fits = [("exp, float64", q_exp, -half_ln2, half_ln2, 9, np.float64),
            ("exp, float32", q_exp, -half_ln2, half_ln2, 4, np.float32),
            ("table exp, float32, N = 8", q_exp, -half_ln2 / 8, half_ln2 / 8, 2, np.float32),
            ("table exp, float32, N = 16", q_exp, -half_ln2 / 16, half_ln2 / 16, 1,
             np.float32),
            ("log, float64", q_log, mp.mpf(0), zmax, 6, np.float64),
            ("log, float32", q_log, mp.mpf(0), zmax, 2, np.float32),
            ("log1p tail of the float log, AVX-512", q_log1p, -mp.mpf(1) / 32 * mp.mpf("1.01"),
             mp.mpf(1) / 16 * mp.mpf("1.0001"), 3, np.float32),
            ("log1p tail of the float log, AVX2", q_log1p, mp.mpf(r_lo) * mp.mpf("1.001"),
             mp.mpf(r_hi) * mp.mpf("1.001"), 3, np.float32)]
    for name, f, a, b, deg, dtype in fits:
        coeffs, err = remez(f, a, b, deg)
        print(f"{name}: degree {deg}, relative error {mp.nstr(err, 3)}")
        suffix = "f" if dtype == np.float32 else ""
        for c in reversed(coeffs):                      # Horner order, as in vecmath.h
            print(f"    {float(dtype(float(c))).hex()}{suffix}")


if __name__ == "__main__":
    main()
