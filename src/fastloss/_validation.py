"""Argument checks and conversions, done once per call before any kernel runs.

Everything here either returns arrays the kernels can read in place (no copy when the
caller's data already has the compute dtype and a usable layout) or raises with a message
that says what was wrong, what was expected and what was given.  Nothing is written to an
output before every check has passed.
"""
from __future__ import annotations

import operator
import os

import numpy as np

from ._kernels import checks, cpu, layout

F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
REDUCTIONS = ("mean", "sum", "none")


def as_array(obj, name: str) -> np.ndarray:
    """Any array-like as an ndarray, without a copy where the source allows.

    NumPy arrays (memory-mapped and read-only ones too) pass through; objects with
    ``__dlpack__`` (PyTorch and JAX CPU tensors) are read through DLPack, others through
    ``__array__`` or as nested sequences.
    """
    if isinstance(obj, np.ndarray):
        return obj
    if hasattr(obj, "__dlpack__"):
        try:
            return np.from_dlpack(obj)
        except (TypeError, BufferError, ValueError, RuntimeError):
            pass                        # e.g. a dtype NumPy lacks: let np.asarray explain
    half = half_array(obj)              # PyTorch bfloat16, which NumPy cannot import
    if half is not None and half[1] == HALF_BF16:
        return _bf16_as_f32(half[0])
    return np.asarray(obj)


def _bf16_as_f32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 values (their 16 bits) as float32, exactly: where a kernel cannot read them
    natively and NumPy has no bfloat16 dtype."""
    wide = bits.astype(np.uint32)
    wide <<= 16
    return wide.view(np.float32)


#: half-precision kinds, as the kernels number them
HALF_F16, HALF_BF16 = cpu.HALVES["float16"], cpu.HALVES["bfloat16"]
_TORCH_HALVES = {"torch.float16": HALF_F16, "torch.bfloat16": HALF_BF16}


def _half_kind(dtype: np.dtype) -> int:
    """HALF_F16 for float16, HALF_BF16 for bfloat16 (ml_dtypes' NumPy dtype), else 0."""
    if dtype.type is np.float16:
        return HALF_F16
    # the type's name: dtype.name is computed in Python (0.5 us, a quarter of a small call)
    return HALF_BF16 if dtype.itemsize == 2 and dtype.type.__name__ == "bfloat16" else 0


def half_array(obj) -> tuple[np.ndarray, int] | None:
    """(the 2-byte values as an ndarray, HALF_F16 or HALF_BF16) when `obj` holds float16
    or bfloat16 values (a NumPy array of float16 or of ml_dtypes' bfloat16, or a PyTorch
    CPU tensor of either, read through DLPack without a copy), else None."""
    if isinstance(obj, np.ndarray):
        kind = _half_kind(obj.dtype)
        return (obj, kind) if kind else None
    kind = _TORCH_HALVES.get(str(getattr(obj, "dtype", "")))
    if kind and type(obj).__module__.startswith("torch") and hasattr(obj, "__dlpack__"):
        import torch                        # the caller's tensor: torch is imported
        try:
            return np.from_dlpack(obj.detach().view(torch.int16)).view(np.uint16), kind
        except (TypeError, BufferError, ValueError, RuntimeError):
            return None                     # e.g. not on the CPU: as_array explains
    return None


def compute_dtype(dtype: np.dtype, name: str) -> np.dtype:
    """float32 stays float32, float64 stays float64, float16 and bfloat16 become float32,
    other real dtypes float64."""
    if dtype.type is np.float32 or _half_kind(dtype):
        return F32
    if dtype.kind in "biuf":
        return F64
    raise TypeError(f"{name} must hold real numbers (float32, float64, float16, bfloat16, "
                    f"or integers/bool, which are converted to float64); got dtype {dtype}")


def as_float(obj, name: str, dtype: np.dtype | None = None) -> np.ndarray:
    """An ndarray of `dtype` (default: the compute dtype its own dtype resolves to)."""
    arr = as_array(obj, name)
    dt = arr.dtype
    if dt is F32 or dt is F64:
        if dtype is None or dt is dtype:
            return arr
    else:
        want = compute_dtype(dt, name)      # raises TypeError for complex, object, str
        if dtype is None:
            dtype = want
        if _half_kind(dt) == HALF_BF16:     # NumPy's own shift: ml_dtypes' cast is scalar
            arr = _bf16_as_f32(arr.view(np.uint16))
            return arr if dtype is F32 else arr.astype(dtype)
    return arr.astype(dtype)


def aligned_c(arr, dtype=None) -> np.ndarray:
    """`arr` as a C-contiguous, aligned array of native byte order (and of `dtype` if
    given): as is when it already is one, else copied once.  Kernels read and write
    through typed pointers, and a misaligned one is undefined behaviour in C (it traps on
    some CPUs), so every array that reaches a kernel comes through here or a check of
    the same flags."""
    return np.require(arr, dtype, ("C", "A"))


def readable(arr: np.ndarray) -> np.ndarray:
    """`arr` in a layout the pointwise kernels read in place: C-contiguous (any shape, read
    flat) or 1-D with any stride (0 and negative included), and aligned; anything else is
    copied once."""
    flags = arr.flags
    if flags.aligned and (flags.c_contiguous
                          or (arr.ndim == 1 and arr.strides[0] % arr.itemsize == 0)):
        return arr
    return aligned_c(arr)


def check_same_shape(input: np.ndarray, target: np.ndarray, what: str = "target") -> None:
    if input.shape != target.shape:
        raise ValueError(f"{what} shape {target.shape} does not match input shape "
                         f"{input.shape} (fastloss does not broadcast the {what})")


def check_reduction(reduction) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none'; got {reduction!r}")


# GNU libgomp's thread pool does not survive fork(): a child forked after the parent ran a
# parallel region would wait forever in its own first one.  Such children run serially
# (found by tests/test_runtime.py; spawn or forkserver children keep every thread).
_threads_used = False
_forked_after_threads = False


def _after_fork_in_child() -> None:
    global _forked_after_threads
    _forked_after_threads = _threads_used


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def resolve_threads(n_threads) -> int:
    """None: OpenMP's default (OMP_NUM_THREADS, threadpoolctl); -1: all cores; k >= 1: k,
    at most the number of cores.  1 in a child forked after the parent used threads."""
    global _threads_used
    if n_threads is None:
        n = cpu.max_threads()
    elif isinstance(n_threads, bool) or not hasattr(n_threads, "__index__"):
        raise TypeError(f"n_threads must be None or an integer; got {type(n_threads).__name__}")
    else:
        n = operator.index(n_threads)
        if n == -1:
            n = cpu.num_procs()
        elif n < 1:
            raise ValueError(f"n_threads must be None, -1 (all cores) or a positive integer; "
                             f"got {n}")
        else:
            n = min(n, cpu.num_procs())
    if n > 1:
        if _forked_after_threads:
            return 1
        _threads_used = True
    return n


def sample_weight_group(weight_shape, sample_shape) -> int:
    """How many consecutive per-sample losses share one weight, or raise.

    A weight array is either one weight per leading-axis sample, shape
    ``(sample_shape[0],)``, or the full per-sample loss shape.
    """
    if weight_shape == sample_shape:
        return 1
    if len(sample_shape) >= 1 and weight_shape == sample_shape[:1]:
        n0 = sample_shape[0]
        return int(np.prod(sample_shape[1:], dtype=np.int64)) if n0 else 1
    expected = f"{sample_shape[:1]} or {sample_shape}" if sample_shape else f"{sample_shape}"
    raise ValueError(f"sample_weight has shape {weight_shape}; expected {expected} "
                     f"(one weight per leading-axis sample, or one per loss value)")


def checked_weights(sample_weight, dtype: np.dtype, sample_shape, n_threads: int,
                    exact=None):
    """(contiguous weights, group, total weight over all per-sample losses).

    The total counts each weight `group` times, exactly, rounded once (and is added to
    the exact-sum state `exact` if given).  Raises ValueError for a wrong shape or a
    negative or non-finite weight.
    """
    w = as_float(sample_weight, "sample_weight", dtype)
    group = sample_weight_group(w.shape, tuple(sample_shape))
    w = aligned_c(w)
    if group == 0:
        # one weight per leading-axis sample whose losses have a zero-length axis: the
        # weights are checked, but they weigh no value, so the total is 0
        _, bad = checks.weights(w, n_threads, 1, None)
        total, group = 0.0, 1
    else:
        total, bad = checks.weights(w, n_threads, group, exact)
    if bad >= 0:
        where = np.unravel_index(bad, w.shape) if w.ndim else ()
        raise ValueError(f"sample_weight must be finite and >= 0; sample_weight"
                         f"[{', '.join(map(str, where))}] = {float(w.reshape(-1)[bad])}")
    return w, group, total


def check_out(out, shape, dtype: np.dtype, name: str, what: str) -> np.ndarray:
    """`out` if it can take `what` (of this shape and dtype) in place; else ValueError."""
    if not isinstance(out, np.ndarray):
        raise ValueError(f"{name} must be a NumPy array; got {type(out).__name__}")
    problems = []
    if out.shape != shape:
        problems.append(f"shape {out.shape} (expected {shape})")
    if out.dtype != dtype:
        problems.append(f"dtype {out.dtype} (expected {dtype})")
    if not out.flags.c_contiguous:
        problems.append("a non-C-contiguous layout")
    if not out.flags.aligned:
        problems.append(f"a misaligned address (not a multiple of {out.dtype.alignment} bytes)")
    if not out.flags.writeable:
        problems.append("read-only memory")
    if problems:
        raise ValueError(f"{name} cannot hold the {what}: it has {', '.join(problems)}")
    return out


def check_no_overlap(outs, ins) -> None:
    for o in outs:
        for i in ins:
            if i is not None and layout.overlap(o, i):
                raise ValueError("out must not share memory with the input, target, "
                                 "weights or another output")
