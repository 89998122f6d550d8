# Vectorizable exp / log / log1p (see vecmath.h for the methods and error bounds).
#
# Kernels call vexp, vlog and vlog1p with a fused `floating` argument; Cython resolves the
# float or double version at compile time, so the call costs nothing and vectorizes.
from cython cimport floating

cdef extern from "vecmath.h" nogil:
    float fl_exp_f32(float x)
    double fl_exp_f64(double x)
    float fl_exp_nonpos_f32(float x)
    double fl_exp_nonpos_f64(double x)
    float fl_exp_tile_f32(float x)
    float fl_log_f32(float x)
    double fl_log_f64(double x)
    float fl_log1p_f32(float x)
    double fl_log1p_f64(double x)
    void fl_exp_shift_n_f32(const float* z, float m, Py_ssize_t n, float* out)
    void fl_exp_shift_n_f64(const double* z, double m, Py_ssize_t n, double* out)
    void fl_log_n_f32(const float* x, Py_ssize_t n, float* out)
    void fl_log_n_where_nonzero_f32(const float* x, Py_ssize_t n, float* out)
    void fl_log_n_f64(const double* x, Py_ssize_t n, double* out)
    float fl_log1p_unit_f32(float u, float ry)
    double fl_log1p_unit_f64(double u, double ry)
    void fl_logistic_parts_f32(const float* x, Py_ssize_t n, float* e, float* d, float* L)
    void fl_logistic_parts_f64(const double* x, Py_ssize_t n, double* e, double* d,
                               double* L)


cdef inline floating vexp(floating x) noexcept nogil:
    if floating is float:
        return fl_exp_f32(x)
    else:
        return fl_exp_f64(x)


cdef inline floating vexp_nonpos(floating x) noexcept nogil:
    """exp(x) for x <= 0 or NaN, as vexp bit for bit, but cheaper (vecmath.h)."""
    if floating is float:
        return fl_exp_nonpos_f32(x)
    else:
        return fl_exp_nonpos_f64(x)


cdef inline floating vexp_tile(floating x) noexcept nogil:
    """One value of vexp_shift_n's exp, bit for bit: exp(x) for x <= 0 or NaN.  float with
    AVX2 or AVX-512: vecmath.h's table exp (other bits than vexp_nonpos); else
    vexp_nonpos.  For the softmax's single values (e at the label) and leftover rows."""
    if floating is float:
        return fl_exp_tile_f32(x)
    else:
        return fl_exp_nonpos_f64(x)


cdef inline floating vlog(floating x) noexcept nogil:
    if floating is float:
        return fl_log_f32(x)
    else:
        return fl_log_f64(x)


cdef inline void vexp_shift_n(const floating* z, floating m, Py_ssize_t n,
                              floating* out) noexcept nogil:
    """out[i] = vexp_tile(z[i] - m) for a tile, z <= m: a softmax's exp (in vectors with
    AVX2 and AVX-512, see vecmath.h); out may be z."""
    if floating is float:
        fl_exp_shift_n_f32(z, m, n, out)
    else:
        fl_exp_shift_n_f64(z, m, n, out)


cdef inline void vlog_n(const floating* x, Py_ssize_t n, floating* out) noexcept nogil:
    """out[i] = vlog(x[i]) for a tile (faster with AVX-512, see vecmath.h); out may be x."""
    if floating is float:
        fl_log_n_f32(x, n, out)
    else:
        fl_log_n_f64(x, n, out)


cdef inline void vlog_n_where_nonzero(const floating* x, Py_ssize_t n,
                                      floating* out) noexcept nogil:
    """out[i] = vlog(x[i]) wherever x[i] != 0, any value where x[i] == 0 (for weights whose
    zeros discard it: faster for float without AVX-512, see vecmath.h); out may not be x."""
    if floating is float:
        fl_log_n_where_nonzero_f32(x, n, out)
    else:
        fl_log_n_f64(x, n, out)


cdef inline floating vlog1p(floating x) noexcept nogil:
    if floating is float:
        return fl_log1p_f32(x)
    else:
        return fl_log1p_f64(x)


cdef inline floating vlog1p_unit(floating u, floating ry) noexcept nogil:
    """log1p(u) for u in [0, 1], given ry = 1 / (1 + u) (faster; see vecmath.h)."""
    if floating is float:
        return fl_log1p_unit_f32(u, ry)
    else:
        return fl_log1p_unit_f64(u, ry)


# sqrt and fabs compile to single instructions (sqrt needs -fno-math-errno, see setup.py);
# these pick the float or double version so float32 is never promoted to double.
from libc.math cimport sqrt, sqrtf, fabs, fabsf


cdef inline floating vsqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline floating vabs(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


cdef inline void vlogistic_parts(const floating* x, Py_ssize_t n, floating* e, floating* d,
                                 floating* L) noexcept nogil:
    """e = exp(-|x|), d = 1 / (1 + e) and L = log1p(e) of n values, in loops over vectors
    (vecmath.h: fl_logistic_parts)."""
    if floating is float:
        fl_logistic_parts_f32(x, n, e, d, L)
    else:
        fl_logistic_parts_f64(x, n, e, d, L)
