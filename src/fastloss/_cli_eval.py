"""``python -m fastloss eval``: a loss over files, streamed in batches with bounded memory.

Files are read batch by batch (rows of the leading axis) and fed to a
:class:`fastloss.Accumulator`, so the value is the one a single call over the whole
arrays would give (bit for bit when the batches are multiples of 4096 rows, which the
default batch size is), while memory stays within a small multiple of one batch:

* ``.npy``: memory-mapped; the pages of a batch are released from the process once it
  is done (``madvise(MADV_DONTNEED)``; they stay in the OS's page cache), so the
  resident size does not grow with the file.
* ``FILE.npz:KEY``: the member ``KEY`` of a NumPy zip archive, read sequentially into
  one reused buffer (stored or deflated members alike).
* ``FILE.parquet:COLUMN``, ``FILE.arrow:COLUMN`` (also ``.feather``, ``.ipc``): a column
  of a Parquet file (read by row batches) or of an Arrow IPC file (memory-mapped), when
  pyarrow is installed.  A column of numbers gives a 1-D array, a column of fixed-size
  lists (or lists of one length) a 2-D array.  pyarrow reads Parquet a row group at a
  time, so memory holds one row group of the column besides the batch.

Errors in the arguments or the files (a missing file, key or column, a dtype that is not
a real number, row counts that differ, a batch the loss rejects) are reported on stderr,
naming the file, with exit status 2.
"""
from __future__ import annotations

import argparse
import ast
import json
import math
import mmap
import os
import sys
import time
import zipfile
from collections.abc import Sequence

import numpy as np

#: bytes of data (input + target + weights) per batch by default
DEFAULT_BUDGET = 64 * 2**20
#: batches are multiples of this many rows by default (the kernels' block: see
#: fastloss.Accumulator), so the value is the single call's, bit for bit
ROW_MULTIPLE = 4096

ARROW_IPC = (".arrow", ".feather", ".ipc")
COLUMNAR = (".parquet", ".pq") + ARROW_IPC


class EvalError(Exception):
    """A problem with the arguments or the files: printed on stderr, exit status 2."""


# ------------------------------------------------------------------ sources ----

class Source:
    """Rows of one array, read front to back: ``read(n)`` gives the next ``n`` rows (fewer
    at the end) as an array valid until the next call; ``done()`` releases what the last
    batch held."""

    spec: str
    shape: tuple
    dtype: np.dtype

    @property
    def rows(self) -> int:
        return self.shape[0]

    @property
    def row_bytes(self) -> int:
        return self.dtype.itemsize * math.prod(self.shape[1:])

    def read(self, n: int) -> np.ndarray:
        raise NotImplementedError

    def done(self) -> None:
        """The last batch is no longer needed."""

    def close(self) -> None:
        pass


def _npy_header(f, spec):
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    except ValueError as e:
        raise EvalError(f"{spec}: not a NumPy .npy array ({e})") from None
    if dtype.hasobject:
        raise EvalError(f"{spec}: holds Python objects (dtype {dtype}), not numbers")
    return tuple(shape), bool(fortran), dtype


class NpySource(Source):
    """A memory-mapped .npy file; each batch's pages are released from the process when
    the batch is done, so that the resident size stays that of one batch."""

    def __init__(self, path: str, spec: str):
        self.spec = spec
        with open(path, "rb") as f:
            self.shape, self.fortran, self.dtype = _npy_header(f, spec)
            self.offset = f.tell()
            size = os.fstat(f.fileno()).st_size
            count = math.prod(self.shape)
            if size < self.offset + count * self.dtype.itemsize:
                raise EvalError(f"{spec}: the file is shorter than its header says "
                                f"({self.shape} of {self.dtype})")
            self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        if not self.shape:
            raise EvalError(f"{spec}: holds a scalar, not an array of rows")
        if count:
            flat = np.frombuffer(self._mm, self.dtype, count, self.offset)
            self._array = flat.reshape(self.shape, order="F" if self.fortran else "C")
        else:
            self._array = np.empty(self.shape, self.dtype)
        self._madvise(mmap.MADV_SEQUENTIAL if hasattr(mmap, "MADV_SEQUENTIAL") else None,
                      0, len(self._mm) if self._mm is not None else 0)
        self._pos = 0
        self._held = None                          # byte range of the last batch

    def _madvise(self, advice, lo, hi):
        if advice is None or self._mm is None or not hasattr(self._mm, "madvise") or hi <= lo:
            return
        lo -= lo % mmap.PAGESIZE
        try:
            self._mm.madvise(advice, lo, min(hi, len(self._mm)) - lo)
        except (OSError, ValueError):
            pass                                   # advice only

    def read(self, n):
        lo, hi = self._pos, min(self._pos + n, self.shape[0])
        self._pos = hi
        if self.fortran and len(self.shape) > 1:
            self._held = (0, len(self._mm)) if self._mm is not None else None
        else:
            self._held = (self.offset + lo * self.row_bytes, self.offset + hi * self.row_bytes)
        return self._array[lo:hi]

    def done(self):
        if self._held is not None:
            self._madvise(getattr(mmap, "MADV_DONTNEED", None), *self._held)
            self._held = None

    def close(self):
        self._array = None
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:                    # a caller still holds a batch
                pass


class NpzMemberSource(Source):
    """An array of a .npz archive, read sequentially into one reused buffer."""

    def __init__(self, path: str, key: str, spec: str):
        self.spec = spec
        try:
            self._zip = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise EvalError(f"{spec}: {path} is not a .npz (zip) archive") from None
        names = self._zip.namelist()
        member = key if key in names else key + ".npy"
        if member not in names:
            have = ", ".join(n[:-4] if n.endswith(".npy") else n for n in names)
            self._zip.close()
            raise EvalError(f"{spec}: {path} has no array {key!r} (it has: {have})")
        self._f = self._zip.open(member)
        self.shape, fortran, self.dtype = _npy_header(self._f, spec)
        if not self.shape:
            raise EvalError(f"{spec}: holds a scalar, not an array of rows")
        if fortran and len(self.shape) > 1:
            raise EvalError(f"{spec}: a Fortran-ordered array cannot be read by rows from "
                            f"an archive; save it in C order (np.ascontiguousarray)")
        self._pos = 0
        self._buf = None

    def read(self, n):
        n = min(n, self.shape[0] - self._pos)
        if self._buf is None or self._buf.shape[0] < n:
            self._buf = np.empty((n,) + self.shape[1:], self.dtype)
        out = self._buf[:n]
        view = memoryview(out.reshape(-1).view(np.uint8))
        got = 0
        while got < len(view):
            k = self._f.readinto(view[got:])
            if not k:
                raise EvalError(f"{self.spec}: the archive member ends before its "
                                f"{self.shape[0]} rows")
            got += k
        self._pos += n
        return out

    def close(self):
        self._f.close()
        self._zip.close()


def _import_pyarrow(spec):
    try:
        import pyarrow
    except ImportError:
        raise EvalError(f"{spec}: reading Parquet and Arrow files needs pyarrow "
                        f"(pip install pyarrow)") from None
    return pyarrow


def _arrow_to_numpy(chunk, spec, width):
    """A pyarrow array (numbers, or lists of `width` numbers) as a NumPy array."""
    import pyarrow as pa

    t = chunk.type
    if pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
        if chunk.null_count:
            raise EvalError(f"{spec}: the column has missing values (nulls)")
        if pa.types.is_fixed_size_list(t):
            values = chunk.flatten()
        else:
            lengths = chunk.value_lengths().to_numpy(zero_copy_only=False)
            if lengths.size and (lengths != width).any():
                raise EvalError(f"{spec}: rows of the list column have different lengths "
                                f"({lengths.min()} to {lengths.max()}); each row must "
                                f"have {width}")
            values = chunk.flatten()
        return _arrow_to_numpy(values, spec, None).reshape(-1, width)
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        raise EvalError(f"{spec}: the column holds {t}, not real numbers")
    if chunk.null_count:
        raise EvalError(f"{spec}: the column has missing values (nulls)")
    return chunk.to_numpy(zero_copy_only=False)


def _arrow_type_info(field_type, spec):
    """(row shape, NumPy dtype) of a column of this Arrow type."""
    import pyarrow as pa

    t = field_type
    if pa.types.is_fixed_size_list(t):
        inner_shape, dtype = _arrow_type_info(t.value_type, spec)
        if inner_shape:
            raise EvalError(f"{spec}: nested lists of more than one level are not supported")
        return (t.list_size,), dtype
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner_shape, dtype = _arrow_type_info(t.value_type, spec)
        if inner_shape:
            raise EvalError(f"{spec}: nested lists of more than one level are not supported")
        return (None,), dtype                      # the width is read from the first row
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        return (), np.dtype(t.to_pandas_dtype())
    raise EvalError(f"{spec}: the column holds {t}, not real numbers")


class ArrowColumnSource(Source):
    """A column of a Parquet file (row batches) or an Arrow IPC file (memory-mapped
    record batches), regrouped into batches of the requested number of rows."""

    def __init__(self, path: str, column: str, spec: str):
        self.spec = spec
        pa = _import_pyarrow(spec)
        ext = os.path.splitext(path)[1].lower()
        try:
            if ext in ARROW_IPC:
                import pyarrow.ipc

                self._handle = pa.memory_map(path, "r")
                try:
                    reader = pyarrow.ipc.open_file(self._handle)
                except pa.ArrowInvalid:
                    self._handle.close()
                    raise EvalError(f"{spec}: not an Arrow IPC file (an Arrow stream, or "
                                    f"another format?); write it with pyarrow.ipc.new_file "
                                    f"or pyarrow.feather.write_feather") from None
                schema, rows = reader.schema, sum(
                    reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
                self._batches = self._ipc_batches(reader, column)
            else:
                import pyarrow.parquet as pq

                self._handle = pq.ParquetFile(path)
                schema, rows = self._handle.schema_arrow, self._handle.metadata.num_rows
                self._batches = None
        except EvalError:
            raise
        except (OSError, pa.ArrowException) as e:
            raise EvalError(f"{spec}: cannot read {path}: {e}") from None
        if column not in schema.names:
            raise EvalError(f"{spec}: {path} has no column {column!r} (it has: "
                            f"{', '.join(schema.names)})")
        self._column = column
        row_shape, self.dtype = _arrow_type_info(schema.field(column).type, spec)
        if row_shape == (None,):
            row_shape = (self._first_width(),)
        self.shape = (rows,) + row_shape
        self._pending: list[np.ndarray] = []
        self._have = 0

    @staticmethod
    def _ipc_batches(reader, column):
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i).column(column)

    def _chunks(self):
        if self._batches is None:
            self._batches = (b.column(0) for b in self._handle.iter_batches(
                batch_size=65536, columns=[self._column]))
        return self._batches

    def _first_width(self):
        """The length of a list column's first row (the chunks read to find it are kept
        for read())."""
        it = self._chunks()
        peeked = []
        for chunk in it:
            peeked.append(chunk)
            if len(chunk):
                break
        self._batches = _chain(peeked, it)
        for chunk in peeked:
            if len(chunk):
                return int(chunk.value_lengths()[0].as_py())
        return 0

    def read(self, n):
        width = self.shape[1] if len(self.shape) > 1 else None
        while self._have < n:
            chunk = next(self._chunks(), None)
            if chunk is None:
                break
            arr = _arrow_to_numpy(chunk, self.spec, width)
            if arr.dtype != self.dtype:
                arr = arr.astype(self.dtype)
            self._pending.append(arr)
            self._have += len(arr)
        if not self._pending:
            return np.empty((0,) + self.shape[1:], self.dtype)
        whole = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        out, rest = whole[:n], whole[n:]
        self._pending = [rest] if len(rest) else []
        self._have = len(rest)
        return out

    def close(self):
        close = getattr(self._handle, "close", None)
        if close is not None:
            close()


def _chain(first, rest):
    yield from first
    yield from rest


def _split_spec(spec: str):
    """(path, key or None) of ``FILE``, ``FILE.npz:KEY`` or ``FILE.parquet:COLUMN``."""
    if os.path.exists(spec) or ":" not in spec:
        return spec, None
    path, key = spec.rsplit(":", 1)
    if os.path.splitext(path)[1].lower() in (".npz",) + COLUMNAR or os.path.exists(path):
        return path, key
    return spec, None


def open_source(spec: str) -> Source:
    """The Source for a file argument; EvalError (naming it) if it cannot be read."""
    path, key = _split_spec(spec)
    if not os.path.exists(path):
        raise EvalError(f"{spec}: no such file")
    if os.path.isdir(path):
        raise EvalError(f"{spec}: is a directory, not a file")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".npz":
            if key is None:
                raise EvalError(f"{spec}: name the array of the archive: {path}:KEY")
            return NpzMemberSource(path, key, spec)
        if ext in COLUMNAR:
            if key is None:
                raise EvalError(f"{spec}: name the column: {path}:COLUMN")
            return ArrowColumnSource(path, key, spec)
        if key is not None:
            raise EvalError(f"{spec}: only .npz archives and Parquet/Arrow files take :KEY")
        return NpySource(path, spec)
    except PermissionError as e:
        raise EvalError(f"{spec}: cannot read: {e.strerror}") from None
    except OSError as e:
        raise EvalError(f"{spec}: cannot read: {e}") from None


def check_real(src: Source, what: str) -> None:
    if src.dtype.kind not in "biuf" or src.dtype.fields is not None:
        raise EvalError(f"{src.spec}: the {what} must hold real numbers; its dtype is "
                        f"{src.dtype}")


# ------------------------------------------------------------------ the loss ----

_WORDS = {"true": True, "false": False, "none": None, "null": None}


def parse_value(text: str):
    """A --param value: an array from a .npy file, else a Python literal (numbers,
    True/False/None in any case, tuples, lists), else the text itself."""
    if text.lower().endswith(".npy"):
        if not os.path.exists(text):
            raise EvalError(f"{text}: no such file")
        try:
            return np.load(text, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise EvalError(f"{text}: cannot read: {e}") from None
    if text.strip().lower() in _WORDS:
        return _WORDS[text.strip().lower()]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def find_loss(name: str):
    import fastloss

    for cls in fastloss.LOSSES:
        if name in (cls.name, cls.__name__) or name.lower() == cls.__name__.lower():
            return cls
    names = ", ".join(cls.name for cls in fastloss.LOSSES)
    raise EvalError(f"unknown loss {name!r}; choose from {names}")


def make_loss(name: str, params: Sequence[str]):
    """The loss row `name` with the --param NAME=VALUE settings, each checked by the
    row's own Param check."""
    cls = find_loss(name)
    known = {p.name: p for p in cls.params}
    values = {}
    for item in params:
        if "=" not in item:
            raise EvalError(f"--param {item!r}: write NAME=VALUE")
        key, text = item.split("=", 1)
        key = key.strip()
        if key not in known:
            have = ", ".join(known) or "none"
            raise EvalError(f"--param {item!r}: {cls.name} has no parameter {key!r} "
                            f"(its parameters: {have})")
        value = parse_value(text)
        try:
            known[key].check(value)
        except (ValueError, TypeError) as e:
            raise EvalError(f"--param {item!r}: {key} {e}") from None
        values[key] = value
    try:
        return cls(**values)
    except (ValueError, TypeError) as e:
        raise EvalError(f"{cls.name}: {e}") from None


# ------------------------------------------------------------------ progress ----

class _Progress:
    """A progress bar on stderr (rich, else tqdm, else nothing) counting bytes, so that
    it shows the throughput; `advance(rows, nbytes)` per batch."""

    def __init__(self, enabled: bool, total_bytes: int, total_rows: int, label: str):
        self._rich = self._tqdm = None
        self._rows = total_rows
        if not enabled:
            return
        try:
            from rich.console import Console
            from rich.progress import (BarColumn, Progress, TextColumn, TimeRemainingColumn,
                                       TransferSpeedColumn)
        except ImportError:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self._tqdm = tqdm(total=total_bytes, unit="B", unit_scale=True,
                              unit_divisor=1024, desc=label, file=sys.stderr, leave=False)
            return
        self._rich = Progress(TextColumn("{task.description}"), BarColumn(),
                              TextColumn("{task.percentage:>5.1f}%"),
                              TextColumn("{task.fields[rows]:,} / {task.fields[total_rows]:,} rows"),
                              TransferSpeedColumn(), TimeRemainingColumn(),
                              console=Console(file=sys.stderr), transient=True)
        self._task = self._rich.add_task(label, total=total_bytes, rows=0,
                                         total_rows=total_rows)
        self._rich.start()
        self._done_rows = 0

    def advance(self, rows: int, nbytes: int):
        if self._rich is not None:
            self._done_rows += rows
            self._rich.update(self._task, advance=nbytes, rows=self._done_rows)
        elif self._tqdm is not None:
            self._tqdm.update(nbytes)

    def close(self):
        if self._rich is not None:
            self._rich.stop()
        elif self._tqdm is not None:
            self._tqdm.close()


# ------------------------------------------------------------------ the command ----

def add_parser(sub, positive_int) -> argparse.ArgumentParser:
    """The ``eval`` subcommand's parser (its arguments are checked in `run`);
    positive_int parses the counts (the command line's shared argument type)."""
    p = sub.add_parser(
        "eval", help="evaluate a loss over files, streamed in batches",
        description="Evaluate a loss of the table over arrays in files (.npy, "
                    "FILE.npz:KEY, FILE.parquet:COLUMN, FILE.arrow:COLUMN), streamed in "
                    "batches of rows with bounded memory.  The value equals one call of "
                    "the loss over the whole arrays (bit for bit when the batch size is "
                    "a multiple of 4096 rows, as the default is).")
    import fastloss

    p.add_argument("loss", metavar="LOSS",
                   help=f"the loss's functional name (one of "
                        f"{', '.join(cls.name for cls in fastloss.LOSSES)}) or class name")
    p.add_argument("input", metavar="INPUT", help="the input (predictions, logits) file")
    p.add_argument("target", metavar="TARGET", help="the target file")
    p.add_argument("--weight", metavar="FILE", help="sample weights, one per row (or one "
                                                    "per per-sample loss)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a parameter of the loss (repeatable): a number, True/False, or a "
                        ".npy file for an array (class_weight=w.npy)")
    p.add_argument("--reduction", choices=("mean", "sum"), default="mean",
                   help="the weighted mean (default) or sum, as the loss computes them")
    p.add_argument("--batch-size", type=positive_int, metavar="ROWS",
                   help=f"rows per batch (default: {DEFAULT_BUDGET // 2**20} MiB of data "
                        f"per batch, rounded down to a multiple of {ROW_MULTIPLE} rows)")
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="threads of the kernels (default: OpenMP's)")
    p.add_argument("--json", action="store_true",
                   help="print a JSON object (value, loss, rows, seconds, ...) on stdout")
    progress = p.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="show a progress bar on stderr (default: if it is a "
                               "terminal)")
    progress.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def default_batch_rows(row_bytes: int, budget: int = DEFAULT_BUDGET) -> int:
    """Rows per batch: `budget` bytes of data, rounded down to a multiple of
    ROW_MULTIPLE rows (at least ROW_MULTIPLE)."""
    rows = budget // max(row_bytes, 1)
    return max(ROW_MULTIPLE, rows - rows % ROW_MULTIPLE)


def evaluate_files(loss, reduction, sources, batch_rows, n_threads, progress):
    """Stream the sources (input, target[, weight]) through an Accumulator: (value,
    batches)."""
    from .accumulate import Accumulator

    acc = Accumulator(loss, reduction)
    x_src = sources[0]
    n = x_src.rows
    row_bytes = sum(s.row_bytes for s in sources)
    batches = 0
    for lo in range(0, n, batch_rows):
        arrays = [s.read(batch_rows) for s in sources]
        try:
            acc.update(arrays[0], arrays[1], arrays[2] if len(arrays) > 2 else None,
                       n_threads=n_threads)
        except (ValueError, TypeError) as e:
            files = ", ".join(f"{role} {s.spec}" for role, s in
                              zip(("input", "target", "weight"), sources))
            raise EvalError(f"rows {lo}..{lo + len(arrays[0]) - 1} ({files}): {e}") from None
        del arrays
        for s in sources:
            s.done()
        batches += 1
        progress.advance(min(batch_rows, n - lo), min(batch_rows, n - lo) * row_bytes)
    return acc.result(), batches


def run(args: argparse.Namespace) -> int:
    """Run ``eval``; returns the exit status (2 and a message on stderr for a problem
    with the arguments or the files)."""
    try:
        return _run(args)
    except EvalError as e:
        print(f"python -m fastloss eval: error: {e}", file=sys.stderr)
        return 2


def _run(args) -> int:
    loss = make_loss(args.loss, args.param)
    specs = [("input", args.input), ("target", args.target)]
    if args.weight is not None:
        specs.append(("weight", args.weight))
    sources: list[Source] = []
    try:
        for what, spec in specs:
            src = open_source(spec)
            sources.append(src)
            check_real(src, what)
        x = sources[0]
        for (what, spec), src in zip(specs[1:], sources[1:]):
            if src.rows != x.rows:
                raise EvalError(f"{spec}: the {what} has {src.rows} rows but the input "
                                f"{x.spec} has {x.rows} (shapes {src.shape} and {x.shape})")
        if loss.family == "softmax" and loss.axis % len(x.shape) == 0:
            raise EvalError(f"{x.spec}: the input has shape {x.shape}, so {loss!r} reads "
                            f"its classes on axis 0, the axis the files are streamed along; "
                            f"give the classes an axis of their own (rows first)")
        row_bytes = sum(s.row_bytes for s in sources)
        batch_rows = args.batch_size or default_batch_rows(row_bytes)
        show = sys.stderr.isatty() if args.progress is None else args.progress
        progress = _Progress(show and x.rows > 0, x.rows * row_bytes, x.rows, loss.name)
        start = time.perf_counter()
        try:
            value, batches = evaluate_files(loss, args.reduction, sources, batch_rows,
                                            args.threads, progress)
        finally:
            progress.close()
        seconds = time.perf_counter() - start
    finally:
        for src in sources:
            src.close()
    nbytes = x.rows * row_bytes
    if args.json:
        out = {"value": value if math.isfinite(value) else str(value),
               "loss": loss.name, "params": {k: _jsonable(v) for k, v in
                                              loss.get_params().items()},
               "reduction": args.reduction, "rows": x.rows, "batches": batches,
               "batch_rows": batch_rows, "bytes": nbytes, "seconds": seconds,
               "rows_per_second": x.rows / seconds if seconds > 0 else None,
               "bytes_per_second": nbytes / seconds if seconds > 0 else None,
               "input": args.input, "target": args.target, "weight": args.weight}
        print(json.dumps(out))
    else:
        rate = f", {nbytes / seconds / 1e9:.2f} GB/s" if seconds > 0 else ""
        print(f"{loss!r} {args.reduction} over {x.rows:,} rows: {value!r}  "
              f"({seconds:.3f} s{rate})")
    return 0


def _jsonable(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v
