"""The benchmark suite runs, its cases follow the table of losses, and its tables and JSON
have the documented structure.

Tiny sizes only (the "smoke" preset): this checks the plumbing, not the speed.  PyTorch
and scikit-learn are used when installed and are never required; rich is needed only to
show the tables and the progress bar.
"""
import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fastloss
from fastloss.__main__ import _flatten, build_parser, main
from fastloss.bench import cases, peers, reference, report, suite

ROOT = Path(__file__).resolve().parents[1]
HEADER = ["loss", "dtype", "shape", "mode", "fastloss", "+-", "/np floor", "/par floor", "torch",
          "sklearn", "numpy", "busy"]


def _rows():
    return {cls.name: cls for cls in fastloss.LOSSES}


def _positive(x):
    return isinstance(x, float) and math.isfinite(x) and x > 0


def _check_results(results, losses, dtypes):
    assert results["schema"] == suite.SCHEMA
    assert set(results["versions"]) >= {"python", "numpy", "fastloss", "torch", "sklearn"}
    machine = results["machine"]
    assert machine["cores"] >= 1 and machine["cpu_model"]
    assert "simd" in machine["fastloss_config"]
    assert results["config"]["losses"] == losses
    cases_, rows = results["cases"], _rows()
    assert {(c["loss"], c["dtype"]) for c in cases_} == {(n, d) for n in losses for d in dtypes}
    for case in cases_:
        assert case["group"] == "losses" and case["label"]
        assert case["repeats"] >= 1 and case["threads"] == results["config"]["threads"]
        assert case["params"] == cases.json_params(cases.instance(rows[case["loss"]])
                                                   .get_params())
        cands = case["candidates"]
        for name in ("fastloss.value", "fastloss.vg_out", "fastloss.vg", "floor.numpy",
                     "floor.parallel", "numpy.vg"):
            stats = cands[name]
            assert _positive(stats["median_s"])
            assert len(stats["samples_s"]) == case["repeats"]
            assert stats["min_s"] <= stats["median_s"] <= stats["max_s"]
        assert case["forms"]["numpy"] == f"reference.{case['loss']}"
        labels = cases.takes_labels(rows[case["loss"]])
        assert case["floor_reads"] == (1 if labels else 2)
        assert [r["mode"] for r in case["rows"]] == [m.label for m in cases.LOSS_MODES]
        for row in case["rows"]:
            for key in ("fastloss_s", "np_floor_ratio", "par_floor_ratio"):
                assert _positive(row[key]), (case["label"], row)
            if row["mode"] == "value":
                assert row["numpy_speedup"] is None         # the reference has no value-only
            else:
                assert _positive(row["numpy_speedup"]), (case["label"], row)
        assert not case["notes"], case["notes"]         # no failures, values agree
    assert any(c["small_call"] for c in cases_)


def _table_lines(printed, header):
    """The body of the table under ``header`` (up to the first blank line)."""
    return printed.split(header, 1)[1].split("\n\n", 1)[0].splitlines()[2:]


def test_cli_bench_smoke_table_and_json(tmp_path, capsys):
    path = tmp_path / "out" / "bench.json"
    rc = main(["bench", "--smoke", "--losses", "mse,ce", "--dtype", "float32",
               "--no-progress", "--json", str(path)])
    assert rc == 0
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if line.startswith("loss "))
    assert header.split() == " ".join(HEADER).split()
    assert "Thread scaling" in printed and f"written to {path}" in printed
    assert "What the peers ran" in printed
    assert "\x1b[" not in printed                   # not a terminal: plain text

    results = json.loads(path.read_text())
    _check_results(results, ["mse", "cross_entropy"], ["float32"])
    n_rows = sum(len(c["rows"]) for c in results["cases"])
    assert len(_table_lines(printed, header)) == n_rows
    scaling = results["scaling"]
    assert [s["loss"] for s in scaling] == ["mse"]
    threads = [r["threads"] for r in scaling[0]["rows"]]
    assert threads == list(range(1, results["machine"]["usable_cores"] + 1))
    assert all(_positive(r["fastloss_s"]) and _positive(r["floor_s"]) for r in scaling[0]["rows"])


def test_scaling_only_at_chosen_thread_counts():
    out = io.StringIO()
    config = suite.BenchConfig(preset="smoke", losses=("mse",), dtypes=("float32",),
                               peers=("numpy",), scaling_threads=(3, 1, 3), cases=False)
    results = suite.run(config, out=out, progress=None)
    assert results["cases"] == [] and results["config"]["scaling_threads"] == [1, 3]
    rows = results["scaling"][0]["rows"]
    assert [r["threads"] for r in rows] == [1, 3]
    assert rows[0]["speedup"] == 1.0 and rows[0]["floor_speedup"] == 1.0
    assert all(_positive(r["fastloss_s"]) and _positive(r["floor_s"]) for r in rows)
    assert "Thread scaling" in out.getvalue() and "/np floor" not in out.getvalue()


def _without_optional_libraries(tmp_path, code):
    """Run `code` in a Python whose only third-party packages are NumPy and fastloss: a
    real environment without PyTorch, scikit-learn, threadpoolctl or rich (``-S``: no
    site-packages; the two packages linked into a folder on PYTHONPATH).  Returns the
    finished process (stdout, stderr, returncode)."""
    import numpy
    try:
        for pkg in (Path(numpy.__file__).parent, Path(fastloss.__file__).parent):
            (tmp_path / pkg.name).symlink_to(pkg, target_is_directory=True)
            libs = pkg.parent / f"{pkg.name}.libs"      # a wheel's vendored libraries
            if libs.is_dir():
                (tmp_path / libs.name).symlink_to(libs, target_is_directory=True)
    except OSError as e:                                # Windows without symlink rights
        pytest.skip(f"cannot link the packages: {e}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(tmp_path)
    proc = subprocess.run([sys.executable, "-S", "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    for name in ("torch", "sklearn", "threadpoolctl", "rich"):     # really absent
        assert f"no {name}" in proc.stdout, (proc.stdout, proc.stderr)
    return proc


ABSENT = """
import importlib.util
for name in ("torch", "sklearn", "threadpoolctl", "rich"):
    if importlib.util.find_spec(name) is None:
        print("no", name)
"""


def test_runs_without_optional_dependencies(tmp_path):
    proc = _without_optional_libraries(tmp_path, ABSENT + """
import json, sys
from fastloss.bench import suite
config = suite.BenchConfig(preset="smoke", losses=("binary_cross_entropy", "kl_divergence"),
                           dtypes=("float64",), scaling=False)
print("RESULTS", json.dumps(suite.run(config, out=None, progress=None)))
""")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.split("RESULTS ", 1)[1])
    _check_results(results, ["binary_cross_entropy", "kl_divergence"], ["float64"])
    assert results["versions"]["torch"] is None and results["versions"]["sklearn"] is None
    assert results["scaling"] == []
    # without threadpoolctl the suite can only report the environment's setting
    env = os.environ.get("OPENBLAS_NUM_THREADS")
    assert (f"OPENBLAS_NUM_THREADS={env}" if env else "not limited") in results["blas_threads"]
    for case in results["cases"]:
        assert not any(n.startswith(("torch.", "sklearn.")) for n in case["candidates"])
        assert set(case["forms"]) == {"numpy"}
        assert all(r["torch_speedup"] is None and r["sklearn_speedup"] is None
                   for r in case["rows"])


def test_without_rich_the_cli_says_what_to_install(tmp_path):
    """rich shows the tables; without it the command stops before measuring, naming the
    extra to install, and run() without output still works."""
    proc = _without_optional_libraries(tmp_path, ABSENT + """
import sys
from fastloss.__main__ import main
from fastloss.bench import report, suite
print("EXIT", main(["bench", "--smoke", "--losses", "mse", "--no-progress"]))
config = suite.BenchConfig(preset="smoke", losses=("mse",), dtypes=("float32",),
                           peers=("numpy",), scaling=False)
results = suite.run(config, out=None, progress=None)
print("LOSSES", [c["loss"] for c in results["cases"]])
try:
    report.format_report(results)
except report.MissingDependency as e:
    print("MISSING", e)
""")
    assert proc.returncode == 0, proc.stderr
    assert "EXIT 1" in proc.stdout and 'pip install "fastloss[bench]"' in proc.stderr
    assert "loss " not in proc.stdout.split("EXIT 1")[0]
    assert "LOSSES ['mse', 'mse']" in proc.stdout
    assert "MISSING" in proc.stdout and "fastloss[bench]" in proc.stdout.split("MISSING", 1)[1]


def test_progress_plain_stream():
    stream = io.StringIO()
    bar = report.Progress([1, 3], stream)
    bar.step("first")
    bar.step("second")
    bar.close()
    bar.close()                                     # closing twice shows nothing more
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[  0%] 1/2 first")
    assert lines[1].startswith("[ 25%] 2/2 second") and lines[-1].startswith("[100%]")
    assert len(lines) == 3


def test_progress_on_a_terminal_uses_rich():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    with report.Progress([1, 1], stream) as bar:
        bar.step("first case")
        bar.step("second case")
    assert bar._rich is not None and "second case" in stream.getvalue()


# ------------------------------------------------------------------ the table decides ----

@pytest.mark.parametrize("preset", sorted(cases.PRESETS))
def test_every_loss_of_the_table_has_cases(preset):
    """Every row of fastloss.LOSSES is benchmarked in every preset and dtype, with its
    NumPy reference as a peer, and no case names a loss the table does not have."""
    made = list(cases.loss_cases(cases.PRESETS[preset], cases.loss_names(), cases.DTYPES))
    assert {c.loss for c in made} == set(_rows())
    for cls in fastloss.LOSSES:
        mine = [c for c in made if c.loss == cls.name]
        assert {c.dtype for c in mine} == set(cases.DTYPES)
        assert sum(c.small_call for c in mine) == len(cases.DTYPES)
        assert all(len(c.shape) == (1 if cls.family == "pointwise" else 2) for c in mine)
        assert peers.has_numpy_reference(cases.instance(cls))


def test_data_follows_the_row():
    for cls in fastloss.LOSSES:
        loss = cases.instance(cls)
        shape = (4,) if cls.family == "pointwise" else (4, 5)
        d = cases.make_data(loss, shape, "float32", seed=0)
        assert d.x.shape == shape and d.x.dtype == "float32" and d.out.shape == shape
        assert d.labels == cases.takes_labels(cls)
        assert d.target.shape == (shape[:-1] if d.labels else shape)
        if "from_logits" in loss.get_params():
            assert loss.get_params()["from_logits"] is True


def test_a_new_row_is_benchmarked_with_no_bench_change():
    """A row added to the table (here a copy of MSE under another name, with references
    under that name, as a contributor adds them) gets cases, NumPy and PyTorch peers and a
    table label at once."""
    from fastloss._loss import LOSSES, Pointwise

    reference.bench_probe = reference.mse
    reference.torch_bench_probe = reference.torch_mse

    class BenchProbe(Pointwise):
        name = "bench_probe"
        kernel = "mse"

    try:
        assert cases.resolve("BenchProbe") == "bench_probe"
        config = suite.BenchConfig(preset="smoke", losses=("bench_probe",),
                                   dtypes=("float64",), scaling=False)
        out = io.StringIO()
        results = suite.run(config, out=out, progress=None)
        _check_results(results, ["bench_probe"], ["float64"])
    finally:
        LOSSES.remove(BenchProbe)
        del reference.bench_probe, reference.torch_bench_probe
    case = results["cases"][-1]
    assert case["label"] == "BenchProbe" and "BenchProbe" in out.getvalue()
    if results["versions"]["torch"] is not None:        # its reference's PyTorch form, marked
        assert case["forms"]["torch"] == "reference.torch_bench_probe(x, t).mean()"
        assert "torch.vg" in case["candidates"] and results["notes"]
    assert "sklearn" not in case["forms"]               # no counterpart: simply left out
    assert "bench_probe" not in cases.loss_names()


def test_importing_fastloss_loads_no_benchmark_code():
    code = ("import sys, fastloss, fastloss.bench.reference; "
            "print(sorted(m for m in sys.modules if m.startswith(('fastloss.bench.', 'rich'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['fastloss.bench.reference']"


# ------------------------------------------------------------------ command line ----

def test_config_command(capsys):
    assert main(["config"]) == 0
    assert "simd" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["bench", "--losses", "nope"], ["bench", "--dtype", "float16"],
                                  ["bench", "--threads", "0"], ["bench", "--quick", "--smoke"],
                                  ["bench", "--scaling-threads", "0"],
                                  ["bench", "--peers", "jax"]])
def test_cli_rejects_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_cli_loss_names():
    """Table names, class names and the old short names all select rows of the table."""
    args = build_parser().parse_args(
        ["bench", "--losses", "mse,CrossEntropy", "kl", "bce"])
    flat = _flatten(args.losses, ())
    assert flat == ("mse", "cross_entropy", "kl_divergence", "binary_cross_entropy")


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


def test_torch_group_smoke():
    """The torch group: fastloss.torch's modules against torch.nn's, every module and the
    training step, values in agreement; not in the default groups."""
    pytest.importorskip("torch")
    from fastloss.bench import torch_cases
    assert "torch" in cases.GROUPS and "torch" not in cases.DEFAULT_GROUPS
    out = io.StringIO()
    config = suite.BenchConfig(preset="smoke", dtypes=("float32",), groups=("torch",),
                               peers=("torch",), scaling=False)
    results = suite.run(config, out=out, progress=None)
    modules = {c["loss"] for c in results["cases"]}
    assert modules == {f"torch.{c.module}" for c in torch_cases.SIZES["smoke"]["cases"]} \
        | {"torch.MLP"}
    for case in results["cases"]:
        assert case["group"] == "torch" and not case["notes"], case["notes"]
        for row in case["rows"]:
            assert _positive(row["fastloss_s"]) and _positive(row["torch_speedup"])
    assert "train step" in out.getvalue() and "nn.CrossEntropyLoss()" in out.getvalue()
    few = suite.BenchConfig(preset="smoke", dtypes=("float32",), groups=("torch",),
                            losses=("mse",), peers=(), scaling=False)
    results = suite.run(few, out=None, progress=None)
    assert [c["loss"] for c in results["cases"]] == ["torch.MSELoss"]
    assert all(r["torch_speedup"] is None for c in results["cases"] for r in c["rows"])


def test_cli_groups_option():
    args = build_parser().parse_args(["bench", "--groups", "torch,losses"])
    assert _flatten(args.groups, cases.DEFAULT_GROUPS) == ("torch", "losses")
    assert build_parser().parse_args(["bench"]).groups is None


def _simd_bars():
    import importlib.util
    path = ROOT / "bench" / "simd_bars.py"
    if not path.exists():
        pytest.skip("bench/simd_bars.py is not part of this installation")
    spec = importlib.util.spec_from_file_location("simd_bars", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_simd_bars_in_cache_shapes_keep_the_row_width():
    bars = _simd_bars()
    limit = bars.IN_CACHE_VALUES
    for _, shape, _ in bars.BARS:
        small = bars.in_cache_shape(shape)
        assert len(small) == len(shape) and small[-1] == (shape[-1] if len(shape) == 2
                                                          else min(shape[0], limit))
        n = math.prod(small)
        # in cache (at most the limit, or one row), yet not trivially small
        assert n <= max(limit, shape[-1]) and (n > limit // 2 or small[0] == 1)
    assert bars.in_cache_shape((3, 10)) == (3, 10)          # never more rows than the case
    assert bars.in_cache_shape((5, 10 * limit)) == (1, 10 * limit)


def test_simd_bars_smoke(tmp_path, monkeypatch, capsys):
    """The script end to end on tiny cases: a line per case with its ratio, the in-cache
    bound and the yardstick, and the same in its JSON."""
    bars = _simd_bars()
    monkeypatch.setattr(bars, "BARS", (("cross_entropy", (512, 10), 2.0),
                                       ("binary_cross_entropy", (4096,), 1.2)))
    monkeypatch.setattr(bars, "IN_CACHE_VALUES", 1024)
    path = tmp_path / "bars.json"
    code = bars.main(["--threads", "1", "--repeats", "3", "--json", str(path)])
    out = capsys.readouterr().out
    assert "in cache" in out and "CrossEntropy(labels) 512 x 10" in out
    results = json.loads(path.read_text())
    assert [c["in_cache_shape"] for c in results["cases"]] == [[102, 10], [1024]]
    for case in results["cases"]:
        assert _positive(case["ratio"]) and _positive(case["ratio_in_cache"])
        assert _positive(case["exp_ns_per_value"])
        assert case["ok"] == (case["ratio"] <= case["bar"])
    level_is_avx2 = results["level"] == "avx2"
    assert code == (0 if all(c["ok"] for c in results["cases"]) or not level_is_avx2 else 1)
    # a bar's verdict at avx2 only; elsewhere the table is a reference
    statuses = {re.search(r" \d+\.\d\d +\d\.\d  (\S+) ", line).group(1)
                for line in out.splitlines() if "512 x 10" in line or "4096" in line}
    assert len(statuses) >= 1
    assert statuses <= ({"ok", "MISS"} if level_is_avx2 else {"ref", "ref>"})


def test_trees_ab_smoke(tmp_path):
    """bench/trees_ab.py end to end, the installed fastloss as both trees, tiny cases, for
    value_and_grad and (--value) the value alone: a row per case in the table, and in its
    JSON a positive figure per case and process, the bfloat16 case included; with
    --base-simd, BASE's processes run at that level and NEW's at the default one."""
    script = ROOT / "bench" / "trees_ab.py"
    if not script.exists():
        pytest.skip("bench/trees_ab.py is not part of this installation")
    pytest.importorskip("ml_dtypes")
    here = Path(fastloss.__file__).resolve().parents[1]
    default_level = fastloss.show_config(file=io.StringIO())["simd"]
    for mode in (["--base-simd", "baseline"], ["--value"]):
        path = tmp_path / "ab.json"
        proc = subprocess.run([sys.executable, str(script), str(here), str(here), "--pairs",
                               "2", "--repeats", "2", "--threads", "1", "--scale", "0.0005",
                               "--json", str(path), *mode], capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        runs, levels = (json.loads(path.read_text())[k] for k in ("runs", "levels"))
        assert len(runs["base"]) == len(runs["new"]) == 2
        assert levels == {"base": ["baseline" if "--base-simd" in mode else default_level] * 2,
                          "new": [default_level] * 2}
        names = set(runs["base"][0])
        assert {"MSE 1e7", "BCE logits 1e7", "CE 1000000x10", "KL 2000x32000",
                "CE bfloat16 2000x32000"} <= names
        assert all(set(r) == names and all(_positive(v) for v in r.values())
                   for r in runs["base"] + runs["new"])
        assert all(name in proc.stdout for name in ("MSE 1e7", "new / base"))
        assert ("value," if "--value" in mode else "value_and_grad(out=),") in proc.stdout
    bad = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode != 0 and "holds a fastloss package" in bad.stderr


def _c_bench(name):
    """(the bench/ C file, the kernel headers' folder, a C compiler), or skip: they exist
    in a checkout with gcc or clang, not in an installed wheel."""
    import shutil
    script = ROOT / "bench" / name
    kernels = ROOT / "src" / "fastloss" / "_kernels"
    cc = shutil.which("gcc") or shutil.which("clang")
    if not script.exists() or not (kernels / "lanes.h").exists() or cc is None:
        pytest.skip("needs a checkout (bench/, the kernel headers) and a C compiler")
    return script, kernels, cc


def test_wide_row_sums_runs(tmp_path):
    """bench/wide_row_sums.c builds from this checkout's kernel headers and runs (tiny):
    a line per row width, and its two sums of each row agree (exit status 0)."""
    script, kernels, cc = _c_bench("wide_row_sums.c")
    exe = tmp_path / "wide_row_sums"
    build = subprocess.run([cc, "-O2", "-fopenmp-simd", f"-I{kernels}", str(script), "-o",
                            str(exe), "-lm"], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    proc = subprocess.run([str(exe), "200000"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "32000 classes" in proc.stdout and " 1000 classes" in proc.stdout
    assert "quads / lanes" in proc.stdout


def _run_ab(name, tmp_path, values):
    """Build a two-tree bench/ C file with this checkout's kernel headers as both sides
    (at the build's AVX2 flags where the CPU has them: the sides' table exp then runs) and
    run it on `values` values; its output, after checking it exited 0 (the sides agree)."""
    import fastloss._dispatch as dispatch
    script, kernels, cc = _c_bench(name)
    flags = ["-O2", "-fopenmp-simd", f"-I{kernels}"]
    if "avx2" in dispatch.available():
        flags += ["-mavx2", "-mfma", "-mf16c"]
    objs = []
    for side in ("1", "2"):
        obj = tmp_path / f"side{side}.o"
        build = subprocess.run([cc, *flags, f"-DSIDE={side}", "-c", str(script), "-o",
                                str(obj)], capture_output=True, text=True)
        assert build.returncode == 0, build.stderr
        objs.append(str(obj))
    exe = tmp_path / name.removesuffix(".c")
    link = subprocess.run([cc, "-O2", str(script), *objs, "-o", str(exe), "-lm"],
                          capture_output=True, text=True)
    assert link.returncode == 0, link.stderr
    proc = subprocess.run([str(exe), str(values)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_tile_sums_ab_runs(tmp_path):
    """bench/tile_sums_ab.c builds (this checkout's kernel headers as both trees) and runs
    (tiny): a line per class count, and the two sides' row sums agree (exit status 0)."""
    out = _run_ab("tile_sums_ab.c", tmp_path, 100000)
    assert all(f"C = {c}," in out for c in (10, 16, 32))


def test_wide_rows_ab_runs(tmp_path):
    """bench/wide_rows_ab.c likewise: the exp line and a line per row width, float32 and
    bfloat16, and the two sides' exps and row sums agree (exit status 0)."""
    out = _run_ab("wide_rows_ab.c", tmp_path, 200000)
    assert "exp, 4096 values in L1" in out
    assert "rows of 32000 classes" in out and "rows of  1000 classes" in out
    assert out.count("bfloat16 / float32") == 2
