# The pointwise losses: one scalar helper each, and nothing else to write for a new one.
#
# Every helper has the same signature (a helper with a stage takes one more argument,
# second: see "A stage" below),
#
#     cdef inline floating closs_<name>(floating x, floating t, floating pw, floating param,
#                                       floating* g, floating* h) noexcept nogil
#
# and returns the loss l(x, t) of one element, setting g = dl/dx and h = d2l/dx2.  `pw` is
# the element's pos_weight (1 where the loss has none) and `param` the loss's one number
# (Pseudo-Huber's delta; unused elsewhere).  A helper ignores what it does not need: once
# inlined into the tile loop, the unused loads disappear.
#
# setup.py finds every `closs_<name>` here and generates the tile loop that dispatches to
# them (pointwise_tiles.pxi in the build folder) and the module's KERNELS table, which maps
# <name> to the number the Python layer passes; a loss class names its helper (`kernel`
# in fastloss/losses.py).  Adding a pointwise loss is this helper, its row in losses.py and
# its reference (CONTRIBUTING.md).
#
# A stage (optional).  A helper whose work is one long chain of dependent steps (BCE with
# logits: an exp, then a division and a log that wait for it) may hand its first steps to
# a stage, a function over the whole tile,
#
#     cdef inline void cstage_<name>(const floating* x, const floating* t, Py_ssize_t n,
#                                    floating* e) noexcept nogil
#
# which writes up to STAGE_VALUES values per element into a scratch tile, the k-th value of
# element i at e[k * TILE + i], and the helper takes a pointer to its element's first value
# as a second argument, closs_<name>(x, e, t, pw, param, g, h), and reads e[0], e[TILE],
# ...  The tile loop runs the stage first.  Short loops keep more elements in flight than
# one long one: the core does not wait on one element's chain while it could start the
# next (BCE with logits, AVX2, 10^7 float32: 9% less time on one thread and 17% on two with
# the exp alone as a stage, bench/results/2026-12-02-epyc2-bce.txt).  And a stage is plain
# C over arrays, so it can use what a scalar helper cannot: the vector math's table exp and
# log, whose lookups a compiler would turn into gathers in a scalar loop (BCE's stage,
# vecmath.h's fl_logistic_parts: 12-14% less time at AVX2 in cache, bench/results/
# 2026-12-03c-logistic.txt).
#
# Each helper's tile loop comes in two forms: with the weights and pos_weight of each
# element, and, for a call that has neither, with the constant 1 in their place (the same
# bits, without the loads and multiplies).
#
# Literals are typed (`cdef floating one = 1`): a bare `1.0` would make C compute a float32
# expression in double, which is both slower and not "float32 end to end".  Each helper
# must stay branch-free (selects, no early return) for its tile loop to vectorize.

cdef inline floating closs_mse(floating x, floating t, floating pw, floating param,
                               floating* g, floating* h) noexcept nogil:
    # r = x - t:  l = r^2, g = 2 r, h = 2
    cdef floating two = 2
    cdef floating r = x - t
    g[0] = two * r
    h[0] = two
    return r * r


cdef inline floating closs_mae(floating x, floating t, floating pw, floating param,
                               floating* g, floating* h) noexcept nogil:
    # l = |r|, g = sign(r) with sign(0) = 0 (the subgradient at the kink) and sign(NaN) = NaN
    # (r - r is +0 for +-0 and NaN for NaN), h = 1 (the usual gradient-boosting surrogate)
    cdef floating one = 1
    cdef floating r = x - t
    g[0] = one if r > 0 else (-one if r < 0 else r - r)
    h[0] = one
    return vabs(r)


cdef inline floating closs_pseudo_huber(floating x, floating t, floating pw, floating delta,
                                        floating* g, floating* h) noexcept nogil:
    # a = |r| / delta, S = sqrt(1 + a^2):  l = delta^2 (S - 1),  g = r / S,  h = S^-3.
    # - S - 1 cancels for small a: there l = r^2 / (S + 1) (the same value, no cancellation).
    # - 1 + a^2 overflows for huge a: beyond `big` (2^32 in float32, 2^500 in float64)
    #   S = a to within 2^-64 relative, so S = a is used there.
    # One square root and two divisions (one for "value" alone; 1 / delta is hoisted out of
    # the loop); finite for finite r.
    cdef floating one = 1
    cdef floating big = 4294967296.0 if floating is float else 3.273390607896142e+150
    cdef floating r = x - t
    cdef floating a = vabs(r) * (one / delta)
    cdef floating S = a if a > big else vsqrt(one + a * a)
    cdef floating p = one / S
    g[0] = r * p
    h[0] = p * p * p
    return delta * delta * (S - one) if a > one else r * r / (S + one)


cdef inline void cstage_bce_logits(const floating* x, const floating* t, Py_ssize_t n,
                                   floating* e) noexcept nogil:
    # e = exp(-|x|) in (0, 1], d = 1 / (1 + e) and log1p(e): the helper's dependent steps
    # (stage: see the top), at e[i], e[TILE + i] and e[2 TILE + i]
    vlogistic_parts(x, n, e, e + TILE, e + 2 * TILE)


cdef inline floating closs_bce_logits(floating x, const floating* e, floating t, floating pw,
                                      floating param, floating* g, floating* h) noexcept nogil:
    # s = sigmoid(x) and sc = 1 - s = sigmoid(-x), both from e = exp(-|x|) in (0, 1] and
    # d = 1 / (1 + e) (the stage's e[0] and e[TILE]): no overflow for any finite x, no
    # cancellation in 1 - s.
    # softplus(+-x) = max(+-x, 0) + log1p(e), and with a = pw t, b = 1 - t,
    # l = a softplus(-x) + b softplus(x) = (a + b) log1p(e) + (x >= 0 ? b x : -a x):
    # both terms >= 0 for t in [0, 1], so no cancellation; finite for |x| up to 1e30 and beyond.
    # g = b s - a sc = d (x >= 0 ? b - a e : b e - a): the sign picks two coefficients, one
    # multiply-add (an fma where the CPU has one: a rounding fewer than b s - a sc where
    # g is near 0) and the second coefficient also weights the linear term of l;
    # h = (a + b) s sc = (a + b) d^2 e.
    # log1p(e) is the stage's e[2 TILE].
    cdef floating one = 1
    cdef floating ex = e[0]
    cdef floating d = e[TILE]
    cdef bint pos = x >= 0
    cdef floating a = pw * t
    cdef floating b = one - t
    cdef floating c1 = -a if pos else b
    cdef floating c0 = b if pos else -a
    g[0] = d * (c1 * ex + c0)
    h[0] = (a + b) * (d * d) * ex
    return (a + b) * e[2 * TILE] + c0 * x


cdef inline floating closs_bce_probs(floating p, floating t, floating pw, floating param,
                                     floating* g, floating* h) noexcept nogil:
    # Input p is a probability.  As torch.nn.functional.binary_cross_entropy: each log is
    # clamped at -100 and the gradient divides by max(p (1 - p), 1e-12), so p = 0 or 1 give
    # finite values.  log(1 - p) is computed as log1p(-p) (exact for small p).
    # l = -(pw t log p + (1 - t) log(1 - p)),
    # g = ((pw t + 1 - t) p - pw t) / max(p (1 - p), eps),
    # h = d g / d p = (pw t (1 - p)^2 + (1 - t) p^2) / (p (1 - p))^2 where p (1 - p) > eps,
    #     else (pw t + 1 - t) / eps (the clamped gradient is linear in p there).
    cdef floating one = 1
    cdef floating eps = 1e-12
    cdef floating lo = -100
    cdef floating lp = vlog(p)
    cdef floating lq = vlog1p(-p)
    cdef floating q = one - p
    cdef floating a = pw * t
    cdef floating b = one - t
    cdef floating d = p * q
    cdef bint clamped = d <= eps
    cdef floating rd = one / (eps if clamped else d)
    lp = lp if lp > lo else lo
    lq = lq if lq > lo else lo
    g[0] = ((a + b) * p - a) * rd
    h[0] = (a + b) * rd if clamped else (a * q * q + b * p * p) * (rd * rd)
    return -(a * lp + b * lq)


cdef inline floating closs_huber(floating x, floating t, floating pw, floating delta,
                                 floating* g, floating* h) noexcept nogil:
    # PyTorch's HuberLoss.  r = x - t; inside (|r| <= delta): l = r^2 / 2, g = r, h = 1;
    # outside: l = delta (|r| - delta / 2), g = delta sign(r), h = 0.  Both pieces are
    # evaluated in PyTorch's order, so the values agree bit for bit (at |r| == delta both
    # are 0.5 delta^2, rounded once).  NaN gives NaN in l, g and h.
    cdef floating one = 1, zero = 0, half = 0.5
    cdef floating r = x - t
    cdef floating a = vabs(r)
    cdef bint inside = a <= delta
    g[0] = r if inside else (delta if r > zero else (-delta if r < zero else r))
    h[0] = one if inside else (zero if a > delta else r)
    return half * r * r if inside else delta * (a - half * delta)


cdef inline floating closs_poisson_nll(floating x, floating t, floating pw, floating param,
                                       floating* g, floating* h) noexcept nogil:
    # PyTorch's PoissonNLLLoss(log_input=True, full=False): x is the log of the rate and t
    # a count >= 0 (checked before the call).  l = exp(x) - t x, g = exp(x) - t, h = exp(x).
    # Near the optimum exp(x) and t x (and t) nearly cancel: with exp(x) rounded to float32
    # the loss would keep only a few digits there, so float32 input is evaluated in float64
    # and rounded once (the one exception to "float32 end to end"; an exp per element either
    # way).  As in PyTorch, exp(x) overflows to inf beyond x = 88.7 (float32) or 709.8.
    cdef double xd = x, td = t
    cdef double e = vexp(xd)
    g[0] = <floating>(e - td)
    h[0] = <floating>e
    return <floating>(e - td * xd)


cdef inline floating closs_kl_div(floating x, floating t, floating pw, floating param,
                                  floating* g, floating* h) noexcept nogil:
    # PyTorch's kl_div (KLDivLoss, log_target=False): x holds log-probabilities, t
    # probabilities.  l = t (log t - x), g = -t, h = 0 (l is linear in x).  Where t == 0 the
    # loss is 0 (0 log 0 = 0), also for x = -inf (PyTorch's xlogy(t, t) - t x gives NaN
    # there); NaN in x or t, or t < 0 (log of a negative number), gives NaN as in PyTorch.
    # log t and x nearly cancel where q is close to t (the terms of a small divergence), so,
    # as for PoissonNLL, float32 input is evaluated in float64 and rounded once.
    cdef double xd = x, td = t
    g[0] = -t
    h[0] = 0
    return <floating>((xd if xd != xd else 0.0) if td == 0.0 else td * (vlog(td) - xd))


cdef inline floating closs_kl_div_log(floating x, floating lt, floating pw, floating param,
                                      floating* g, floating* h) noexcept nogil:
    # PyTorch's kl_div with log_target=True: the target holds lt = log t.
    # l = exp(lt) (lt - x), g = -exp(lt), h = 0.  Where exp(lt) == 0 (lt = -inf) the loss is
    # 0 (PyTorch gives NaN there: 0 * -inf); NaN in x or lt gives NaN.  lt - x cancels near
    # the optimum, and is exact in float64 for float32 input: evaluated in float64, rounded
    # once (the exponential stays in the input's precision: g is exp(lt) either way).
    cdef floating e = vexp(lt)
    cdef double xd = x, ltd = lt
    g[0] = -e
    h[0] = 0
    return <floating>((xd if xd != xd else 0.0) if e == 0 else <double>e * (ltd - xd))
