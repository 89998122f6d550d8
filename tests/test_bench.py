"""The benchmark suite runs, and its table and JSON have the documented structure.

Tiny sizes only (the "smoke" preset): this checks the plumbing, not the speed.  PyTorch
and scikit-learn are used when installed and are never required.
"""
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fastloss import benchmarks
from fastloss.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
HEADER = ["loss", "dtype", "shape", "mode", "fastloss", "+-", "/np floor", "/par floor", "torch",
          "sklearn", "numpy", "busy"]


def _positive(x):
    return isinstance(x, float) and math.isfinite(x) and x > 0


def _check_results(results, losses, dtypes):
    assert results["schema"] == benchmarks.SCHEMA
    assert set(results["versions"]) >= {"python", "numpy", "fastloss", "torch", "sklearn"}
    machine = results["machine"]
    assert machine["cores"] >= 1 and machine["cpu_model"]
    assert "simd" in machine["fastloss_config"]
    cases = results["cases"]
    assert {(c["loss"], c["dtype"]) for c in cases} == {(l, d) for l in losses for d in dtypes}
    for case in cases:
        assert case["repeats"] >= 1 and case["threads"] == results["config"]["threads"]
        cands = case["candidates"]
        for name in ("fastloss.value", "fastloss.vg_out", "fastloss.vg", "floor.numpy",
                     "floor.parallel", "numpy.value", "numpy.vg"):
            stats = cands[name]
            assert _positive(stats["median_s"])
            assert len(stats["samples_s"]) == case["repeats"]
            assert stats["min_s"] <= stats["median_s"] <= stats["max_s"]
        assert case["floor_reads"] == (1 if case["loss"] == "ce" else 2)
        assert [r["mode"] for r in case["rows"]] == [m for m, _, _ in benchmarks.MODES]
        for row in case["rows"]:
            for key in ("fastloss_s", "np_floor_ratio", "par_floor_ratio", "numpy_speedup"):
                assert _positive(row[key]), (case["label"], row)
        assert not case["notes"], case["notes"]         # no failures, values agree
    assert any(c["small_call"] for c in cases)


def test_cli_bench_smoke_table_and_json(tmp_path, capsys):
    path = tmp_path / "out" / "bench.json"
    rc = main(["bench", "--smoke", "--losses", "mse,ce", "--dtype", "float32",
               "--no-progress", "--json", str(path)])
    assert rc == 0
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if line.startswith("loss "))
    assert header.split() == " ".join(HEADER).split()
    assert "Thread scaling" in printed and f"written to {path}" in printed

    results = json.loads(path.read_text())
    _check_results(results, ["mse", "ce"], ["float32"])
    n_rows = sum(len(c["rows"]) for c in results["cases"])
    table = printed.split(header, 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    assert len(table) == n_rows
    scaling = results["scaling"]
    assert [s["loss"] for s in scaling] == ["mse"]
    threads = [r["threads"] for r in scaling[0]["rows"]]
    assert threads == list(range(1, results["machine"]["usable_cores"] + 1))
    assert all(_positive(r["fastloss_s"]) and _positive(r["floor_s"]) for r in scaling[0]["rows"])


def test_scaling_only_at_chosen_thread_counts():
    out = io.StringIO()
    config = benchmarks.BenchConfig(preset="smoke", losses=("mse",), dtypes=("float32",),
                                    peers=("numpy",), scaling_threads=(3, 1, 3), cases=False)
    results = benchmarks.run(config, out=out, progress=None)
    assert results["cases"] == [] and results["config"]["scaling_threads"] == [1, 3]
    rows = results["scaling"][0]["rows"]
    assert [r["threads"] for r in rows] == [1, 3]
    assert rows[0]["speedup"] == 1.0 and rows[0]["floor_speedup"] == 1.0
    assert all(_positive(r["fastloss_s"]) and _positive(r["floor_s"]) for r in rows)
    assert "Thread scaling" in out.getvalue() and "/np floor" not in out.getvalue()


def test_runs_without_optional_dependencies(monkeypatch):
    monkeypatch.setattr(benchmarks, "_optional", lambda name: None)
    out = io.StringIO()
    config = benchmarks.BenchConfig(preset="smoke", losses=("bce", "kl"), dtypes=("float64",),
                                    scaling=False)
    results = benchmarks.run(config, out=out, progress=None)
    _check_results(results, ["bce", "kl"], ["float64"])
    assert results["versions"]["torch"] is None and results["versions"]["sklearn"] is None
    assert results["scaling"] == []
    # without threadpoolctl the suite can only report the environment's setting
    env = os.environ.get("OPENBLAS_NUM_THREADS")
    assert (f"OPENBLAS_NUM_THREADS={env}" if env else "not limited") in results["blas_threads"]
    for case in results["cases"]:
        assert not any(n.startswith(("torch.", "sklearn.")) for n in case["candidates"])
        assert all(r["torch_speedup"] is None and r["sklearn_speedup"] is None
                   for r in case["rows"])
    assert "Thread scaling" not in out.getvalue()


def test_progress_bar_plain_stream():
    stream = io.StringIO()
    bar = benchmarks.Progress([1, 3], stream)
    bar.step("first")
    bar.step("second")
    bar.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[") and "1/2 first" in lines[0]
    assert " 25% 2/2 second" in lines[1] and "100%" in lines[-1]


def test_config_command(capsys):
    assert main(["config"]) == 0
    assert "simd" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["bench", "--losses", "nope"], ["bench", "--dtype", "float16"],
                                  ["bench", "--threads", "0"], ["bench", "--quick", "--smoke"],
                                  ["bench", "--scaling-threads", "0"]])
def test_cli_rejects_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_module_help_and_launcher(tmp_path):
    run = [sys.executable, "-m", "fastloss", "--help"]
    proc = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "bench" in proc.stdout

    launcher = ROOT / "bench" / "run.py"
    if not launcher.exists():
        pytest.skip("bench/run.py is not part of this installation")
    path = tmp_path / "launcher.json"
    proc = subprocess.run([sys.executable, str(launcher), "--smoke", "--losses", "mae",
                           "--dtype", "float64", "--peers", "numpy", "--no-scaling",
                           "--no-progress", "--json", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(path.read_text())
    assert [c["loss"] for c in results["cases"]] == ["mae", "mae"]
