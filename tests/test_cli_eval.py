"""``python -m fastloss eval``: a loss over files, streamed in batches (issue 14).  The value
equals one call over the whole arrays (bitwise at 4096-row batches), every input format
gives the same value, and problems with the files exit with status 2 naming the file."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastloss
from conftest import LOSS_INSTANCES, input_for, target_for
from fastloss import _cli_eval
from fastloss.__main__ import main

N = 3 * 4096 + 517


def run_eval(capsys, *argv):
    """(exit status, stdout, stderr) of ``python -m fastloss eval ARGV`` in this process."""
    status = main(["eval", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def value_of(capsys, *argv):
    status, out, err = run_eval(capsys, *argv, "--json")
    assert status == 0, err
    return json.loads(out)


def streamable(loss):
    """Instances whose classes are not on the leading axis (the CLI streams axis 0)."""
    return not (loss.family == "softmax" and loss.axis % 2 == 0)


def param_args(loss, folder):
    """--param arguments that rebuild `loss` (arrays saved to .npy files)."""
    args = []
    defaults = {p.name: p.default for p in type(loss).params}
    for name, value in loss.get_params().items():
        if isinstance(value, np.ndarray):
            path = folder / f"{name}.npy"
            np.save(path, value)
            args += ["--param", f"{name}={path}"]
        elif value != defaults[name] or isinstance(defaults[name], np.ndarray):
            args += ["--param", f"{name}={value}"]
    return args


@pytest.mark.parametrize("loss", [l for l in LOSS_INSTANCES if streamable(l)], ids=repr)
def test_every_row_and_parameter_example_equals_the_single_call(loss, tmp_path, capsys):
    rng = np.random.default_rng(3)
    shape = (N, 5) if loss.family == "softmax" else (N, 3)
    x = input_for(loss, shape, rng, np.float32)
    t = target_for(loss, x.astype(np.float64), rng)
    w = rng.uniform(0, 2, N)
    for name, a in (("x", x), ("t", t), ("w", w)):
        np.save(tmp_path / f"{name}.npy", a)
    files = [loss.name, tmp_path / "x.npy", tmp_path / "t.npy", "--weight",
             tmp_path / "w.npy", *param_args(loss, tmp_path)]
    for reduction in ("mean", "sum"):
        want = loss(x, t, sample_weight=w, reduction=reduction)
        got = value_of(capsys, *files, "--reduction", reduction)     # default batch size
        assert got["value"] == want and got["loss"] == loss.name and got["rows"] == N
        assert value_of(capsys, *files, "--reduction", reduction,
                        "--batch-size", 4096)["value"] == want
        odd = value_of(capsys, *files, "--reduction", reduction, "--batch-size", 1000)
        assert odd["batches"] == -(-N // 1000)
        np.testing.assert_allclose(odd["value"], want, rtol=1e-13)


def test_json_output_and_plain_output(tmp_path, capsys):
    x = np.arange(10_000, dtype=np.float64).reshape(-1, 2)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", np.zeros_like(x))
    got = value_of(capsys, "mse", tmp_path / "x.npy", tmp_path / "t.npy", "--threads", 1)
    assert set(got) >= {"value", "loss", "rows", "seconds", "batches", "batch_rows",
                        "bytes", "reduction", "params"}
    assert got["value"] == fastloss.MSE()(x, np.zeros_like(x)) and got["rows"] == 5000
    assert got["batch_rows"] % 4096 == 0 and got["seconds"] >= 0
    status, out, err = run_eval(capsys, "MSE", tmp_path / "x.npy", tmp_path / "t.npy",
                                "--no-progress")
    assert status == 0 and repr(got["value"]) in out and "5,000 rows" in out
    status, out, err = run_eval(capsys, "mse", tmp_path / "x.npy", tmp_path / "t.npy",
                                "--progress")
    assert status == 0 and repr(got["value"]) in out


def test_default_batch_size_is_a_multiple_of_4096_rows_within_the_budget():
    assert _cli_eval.default_batch_rows(8) == 8 * 2**20
    assert _cli_eval.default_batch_rows(3 * 4 + 8) % 4096 == 0
    assert _cli_eval.default_batch_rows(3 * 4 + 8) * 20 <= _cli_eval.DEFAULT_BUDGET
    assert _cli_eval.default_batch_rows(10**9) == 4096


# ------------------------------------------------------------------ formats ----

def ce_data(rng, n=N, c=6):
    x = (rng.normal(size=(n, c)) * 3).astype(np.float32)
    return x, rng.integers(0, c, n), rng.uniform(0, 2, n)


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_members(tmp_path, capsys, compressed):
    rng = np.random.default_rng(1)
    x, y, w = ce_data(rng)
    (np.savez_compressed if compressed else np.savez)(tmp_path / "d.npz", logits=x,
                                                      labels=y, w=w)
    want = fastloss.CrossEntropy(label_smoothing=0.2)(x, y, sample_weight=w)
    d = tmp_path / "d.npz"
    got = value_of(capsys, "cross_entropy", f"{d}:logits", f"{d}:labels", "--weight",
                   f"{d}:w", "--param", "label_smoothing=0.2", "--batch-size", 4096)
    assert got["value"] == want


def test_parquet_and_arrow_columns(tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow.feather as feather

    rng = np.random.default_rng(2)
    x, y, w = ce_data(rng)
    want = fastloss.CrossEntropy()(x, y, sample_weight=w)
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])
    table = pa.table({"logits": fixed, "label": y, "w": w,
                      "logits_list": pa.array(list(x.astype(np.float64)))})
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=5000)
    feather.write_feather(table, tmp_path / "d.arrow", chunksize=3000)
    for f in ("d.parquet", "d.arrow"):
        p = tmp_path / f
        got = value_of(capsys, "cross_entropy", f"{p}:logits", f"{p}:label", "--weight",
                       f"{p}:w", "--batch-size", 4096)
        assert got["value"] == want, f
    # a column of lists of one length (float64 here) is a 2-D array too
    p = tmp_path / "d.parquet"
    got = value_of(capsys, "cross_entropy", f"{p}:logits_list", f"{p}:label")
    np.testing.assert_allclose(got["value"], fastloss.CrossEntropy()(x.astype(np.float64), y),
                               rtol=1e-13)
    status, _, err = run_eval(capsys, "cross_entropy", f"{p}:nope", f"{p}:label")
    assert status == 2 and "no column 'nope'" in err and "logits" in err
    # mixing formats: Parquet input, .npy target
    np.save(tmp_path / "y.npy", y)
    assert value_of(capsys, "cross_entropy", f"{p}:logits", tmp_path / "y.npy",
                    "--weight", f"{tmp_path / 'd.arrow'}:w")["value"] == want


# ------------------------------------------------------------------ errors ----

@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    x, y, w = ce_data(rng, n=5000)
    paths = {}
    for name, a in (("x", x), ("y", y), ("w", w), ("short", y[:10]),
                    ("complex", x.astype(np.complex64)), ("cw", np.arange(1.0, 7)),
                    ("bad_label", np.r_[y[:-1], 17])):
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], a)
    np.savez(tmp_path / "d.npz", x=x)
    paths["npz"] = tmp_path / "d.npz"
    (tmp_path / "junk.npy").write_bytes(b"not a numpy file at all")
    paths["junk"] = tmp_path / "junk.npy"
    paths["dir"] = tmp_path
    return paths


@pytest.mark.parametrize("args, message", [
    (("cross_entropy", "{missing}", "{y}"), "{missing}: no such file"),
    (("cross_entropy", "{x}", "{y}", "--weight", "{missing}"), "{missing}: no such file"),
    (("cross_entropy", "{complex}", "{y}"), "{complex}: the input must hold real numbers"),
    (("cross_entropy", "{x}", "{short}"), "{short}: the target has 10 rows but the input"),
    (("cross_entropy", "{x}", "{y}", "--weight", "{short}"), "{short}: the weight has 10 rows"),
    (("cross_entropy", "{x}", "{bad_label}", "--batch-size", "4096"),
     "rows 4096..4999 (input {x}, target {bad_label}): target[903] = 17"),
    (("cross_entropy", "{x}", "{w}"), "target {w}): class indices must be integers"),
    (("cross_entropy", "{npz}:nope", "{y}"), "{npz}:nope: {npz} has no array 'nope' (it has: x)"),
    (("cross_entropy", "{npz}", "{y}"), "name the array of the archive"),
    (("cross_entropy", "{junk}", "{y}"), "{junk}: not a NumPy .npy array"),
    (("cross_entropy", "{dir}", "{y}"), "is a directory"),
    (("xentropy", "{x}", "{y}"), "unknown loss 'xentropy'; choose from mse"),
    (("cross_entropy", "{x}", "{y}", "--param", "label_smoothing=2"),
     "--param 'label_smoothing=2': label_smoothing must be in [0, 1]"),
    (("cross_entropy", "{x}", "{y}", "--param", "nope=1"), "has no parameter 'nope'"),
    (("cross_entropy", "{x}", "{y}", "--param", "smoothing"), "write NAME=VALUE"),
    (("cross_entropy", "{x}", "{y}", "--param", "class_weight={missing}"),
     "{missing}: no such file"),
    (("cross_entropy", "{x}", "{y}", "--param", "class_weight={short}"),
     "class_weight has shape (10,) but the input has 6 classes"),
    (("cross_entropy", "{x}", "{y}", "--param", "axis=0"), "classes on axis 0"),
    (("mse", "{x}:col", "{x}"), "only .npz archives and Parquet/Arrow files take :KEY"),
])
def test_problems_exit_2_naming_the_file(files, capsys, args, message):
    names = {k: str(v) for k, v in files.items()}
    names["missing"] = str(files["dir"] / "missing.npy")
    status, out, err = run_eval(capsys, *(a.format(**names) for a in args))
    assert status == 2 and out == ""
    assert err.startswith("python -m fastloss eval: error: ")
    assert message.format(**names) in err, err


def test_class_weight_from_a_file(files, capsys):
    x, y, cw = (np.load(files[k]) for k in ("x", "y", "cw"))
    got = value_of(capsys, "cross_entropy", files["x"], files["y"], "--param",
                   f"class_weight={files['cw']}", "--param", "ignore_index=3")
    assert got["value"] == fastloss.CrossEntropy(class_weight=cw, ignore_index=3)(x, y)


def test_the_command_line_exits_2_with_the_message_on_stderr(files):
    proc = subprocess.run([sys.executable, "-m", "fastloss", "eval", "mse",
                           str(files["dir"] / "nothing.npy"), str(files["x"])],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "nothing.npy: no such file" in proc.stderr


# ------------------------------------------------------------------ memory ----

PEAK = r"""
import sys
from fastloss.__main__ import main
status = main(sys.argv[1:])
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print("HWM", int(line.split()[1]) * 1024)
sys.exit(status)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc (Linux)")
def test_memory_stays_bounded_by_the_batch_not_the_file(tmp_path):
    """2 x 96 MiB of .npy read in 1 MiB batches: the peak resident size grows by far less
    than the files (their pages are released batch by batch)."""
    n = 24 * 2**20
    for name in ("x", "t"):
        out = np.lib.format.open_memmap(tmp_path / f"{name}.npy", "w+", np.float32, (n,))
        out[:] = 1.0 if name == "x" else 0.5
        out.flush()
        del out
    np.save(tmp_path / "small.npy", np.ones(10, np.float32))

    def peak(x, t, *extra):
        proc = subprocess.run([sys.executable, "-c", PEAK, "eval", "mse", str(x), str(t),
                               "--json", *map(str, extra)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        return json.loads(lines[0]), int(lines[-1].split()[1])

    res, big = peak(tmp_path / "x.npy", tmp_path / "t.npy", "--batch-size", 131072)
    assert res["value"] == 0.25 and res["rows"] == n
    _, small = peak(tmp_path / "small.npy", tmp_path / "small.npy")
    assert big - small < 48 * 2**20, (big, small)
