#!/usr/bin/env python3
"""Local check of fastloss's binary wheel and sdist, as users will get them (Linux only).

    python tools/check_wheel.py [--keep] [--no-sdist-install]

What it checks, in order, stopping at the first failure with a non-zero exit:

1. config       pyproject's [tool.cibuildwheel]: every platform builds with
                FASTLOSS_OPENMP=required, and tests run from a copy of the tests.
2. identifiers  `cibuildwheel --print-build-identifiers --platform P` lists exactly the
                intended builds for linux, macos and windows (CPython 3.10-3.14).
3. sdist        `python -m build --sdist` from a copy of the project's files (git ls-files,
                new files included); the sdist holds every source file, no build output.
4. build        the wheel, built from the unpacked sdist (as pip does), with
                FASTLOSS_OPENMP=required: the one compile of the wheel.
5. wheel        the wheel holds every kernel module and fastloss.api, the C API's
                declarations fastloss/api.pxd and no other source, and the right metadata.
6. repair       `auditwheel repair`: libgomp is vendored in fastloss.libs/ and every
                extension module links that copy (patchelf), not the system's.
7. test         a fresh venv with the repaired wheel and its [test-wheel] extra (the core
                suite; never torch):
                pyproject's cibuildwheel test-command, run in a temporary folder holding the
                test-sources, so the INSTALLED fastloss is tested (a pytest plugin checks
                fastloss.__file__ is in the venv); plus a smoke run that checks the process
                maps only the vendored libgomp.
   downstream   docs/capi_example (the C API's example package) built with pip, no build
                isolation, in that venv against the installed wheel (fastloss/api.pxd), and
                its check.py run: results equal the Python API's.  (The test suite's
                tests/test_capi.py builds its own downstream module there too.)
8. test-np1     the same with numpy 1.26.4 as the runtime, then a smoke run with numpy
                1.23.5, the oldest release the wheel supports (NPY_TARGET_VERSION).
9. sdist-install  `pip install` of the sdist (build isolation, default FASTLOSS_OPENMP)
                into a fresh venv; smoke import and loss calls from outside the tree.

Tools (build, auditwheel, patchelf, cibuildwheel) live in a venv under
$FASTLOSS_CHECK_CACHE (default ~/.cache/fastloss-check), reused between runs; pip's own
cache is reused too.  Everything else goes to a temporary folder, removed on success
unless --keep.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import runpy
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import threading
import time
import zipfile
from pathlib import Path

try:
    import tomllib
except ImportError:                        # Python 3.10
    tomllib = None

REPO = Path(__file__).resolve().parent.parent
TOOLS = ["build>=1.2", "auditwheel>=6.1", "patchelf>=0.17", "cibuildwheel>=3.1,<5"]
PYTHONS = ("cp310", "cp311", "cp312", "cp313", "cp314")
EXPECTED_IDS = {
    "linux": {f"{py}-{libc}_{arch}" for py in PYTHONS for libc in ("manylinux", "musllinux")
              for arch in ("x86_64", "aarch64")},
    "macos": {f"{py}-macosx_{arch}" for py in PYTHONS for arch in ("x86_64", "arm64")},
    "windows": {f"{py}-win_amd64" for py in PYTHONS},
}
OLD_NUMPY = "1.26.4"           # the last 1.x release: the full test suite runs against it
FLOOR_NUMPY = "1.23.5"         # the oldest NumPy the wheel supports: a smoke run
BUILD = runpy.run_path(str(REPO / "src" / "fastloss" / "_build.py"))   # what is built
COMMAND_TIMEOUT = 600          # seconds for any one command (a build, a test run)
API_DECLARATIONS = ("fastloss/api.pxd",)   # the C API's declarations: the only source shipped
EXAMPLE = REPO / "docs" / "capi_example"   # the C API's downstream example (docs/capi.rst)

# A run of the installed package: imported from the venv, OpenMP on, a few loss calls.
SMOKE = textwrap.dedent(r"""
    import json, os, sys
    import numpy as np
    import fastloss

    prefix, vendored = os.path.realpath(sys.argv[1]), sys.argv[2] == "vendored"
    where = os.path.realpath(fastloss.__file__)
    assert where.startswith(prefix + os.sep), f"fastloss imported from {where}, not {prefix}"
    cfg = fastloss.show_config()
    assert cfg["openmp"] is True, "not an OpenMP build"
    for flag in ("-ffast-math", "-march=native"):
        assert flag not in json.dumps(cfg), f"{flag} in the build flags"
    x = np.linspace(-3, 3, 100_003)
    t = np.zeros_like(x)
    v1 = fastloss.MSE()(x, t, n_threads=1)
    v2, g = fastloss.MSE().value_and_grad(x, t, n_threads=2)
    assert v1 == v2, (v1, v2)
    assert abs(v1 - float(np.mean(x * x))) <= 1e-12 * v1
    assert g.dtype == np.float64 and g.shape == x.shape
    for loss in (fastloss.MAE(), fastloss.PseudoHuber(), fastloss.BinaryCrossEntropy()):
        assert np.isfinite(loss(x.astype(np.float32), (t + 1) / 2))
    logits = np.random.default_rng(0).standard_normal((1000, 7))
    labels = np.arange(1000) % 7
    assert np.isfinite(fastloss.CrossEntropy()(logits, labels))
    assert np.isfinite(fastloss.KLDivergence()(logits, np.full_like(logits, 1 / 7)))
    if vendored and os.path.exists("/proc/self/maps"):
        maps = {line.split()[-1] for line in open("/proc/self/maps") if "libgomp" in line}
        assert maps and all("fastloss.libs" in m for m in maps), f"libgomp mapped from {maps}"
    print(f"smoke OK: fastloss {fastloss.__version__} from {where}, numpy {np.__version__}, "
          f"simd {cfg['simd']}, threads {cfg['default_threads']}")
""")

# Loaded into pytest with -p: fails the run unless fastloss comes from the venv under test.
PYTEST_PLUGIN = textwrap.dedent(r"""
    import os, sys
    import pytest

    PREFIX = os.path.realpath(os.environ["FASTLOSS_CHECK_PREFIX"])

    def _where():
        import fastloss
        return os.path.realpath(fastloss.__file__)

    def pytest_configure(config):
        where = _where()
        if not where.startswith(PREFIX + os.sep):
            raise pytest.UsageError(f"fastloss imported from {where}, not from {PREFIX}")
        import numpy
        print(f"[check_wheel] testing fastloss from {where} with numpy {numpy.__version__}",
              file=sys.stderr)

    def pytest_sessionfinish(session, exitstatus):
        where = _where()
        if not where.startswith(PREFIX + os.sep):
            raise pytest.UsageError(f"fastloss imported from {where}, not from {PREFIX}")
""")


class CheckFailed(Exception):
    pass


class Checker:
    def __init__(self, args):
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="fastloss-wheelcheck-"))
        self.logs = self.work / "logs"
        self.logs.mkdir()
        cache = os.environ.get("FASTLOSS_CHECK_CACHE") or Path.home() / ".cache" / "fastloss-check"
        self.cache = Path(cache)
        self.results: list[tuple[str, str, float, str]] = []
        self.env = clean_env()
        self.sdist = self.wheel = self.repaired = None
        self.test_sources = ["tests", "pyproject.toml"]
        self.test_command = "python -m pytest -x -q -p no:cacheprovider tests"

    # -- running things -----------------------------------------------------------------------

    def run(self, cmd, *, log: str, cwd=None, env=None, stream=False, check=True, quiet=False,
            timeout: float = COMMAND_TIMEOUT):
        """Run cmd; its output goes to logs/<log>.log (and the terminal if stream).

        A command still running after `timeout` seconds is killed (its whole process
        group) and fails the check: nothing here can hang a CI run.
        """
        cmd = [str(c) for c in cmd]
        if not quiet:
            print(f"  $ {shlex.join(cmd)}" + (f"   (in {cwd})" if cwd else ""), flush=True)
        path = self.logs / f"{log}.log"
        with open(path, "a") as f:
            f.write(f"$ {shlex.join(cmd)}\n")
            f.flush()
            proc = subprocess.Popen(cmd, cwd=cwd, env=env or self.env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            timed_out = threading.Event()

            def kill():
                timed_out.set()
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)

            timer = threading.Timer(timeout, kill)
            timer.start()
            lines = []
            try:
                for line in proc.stdout:
                    if stream:
                        sys.stdout.write("    " + line)
                        sys.stdout.flush()
                    f.write(line)
                    lines.append(line)
                rc = proc.wait()
            finally:
                timer.cancel()
            out = "".join(lines)
        if timed_out.is_set():
            raise CheckFailed(f"timed out after {timeout:.0f} s: {shlex.join(cmd)} (log: {path})")
        if check and rc != 0:
            if not stream:
                tail = "\n".join(out.splitlines()[-60:])
                print(textwrap.indent(tail, "    | "))
            raise CheckFailed(f"exit code {rc} from: {shlex.join(cmd)} (log: {path})")
        return out

    @contextlib.contextmanager
    def step(self, name: str, what: str):
        print(f"\n=== {name}: {what}", flush=True)
        start = time.monotonic()
        try:
            yield
        except CheckFailed as e:
            self.results.append((name, "FAILED", time.monotonic() - start, str(e)))
            raise
        except Exception as e:                 # an assertion or a bug: still a failure
            self.results.append((name, "FAILED", time.monotonic() - start, repr(e)))
            raise CheckFailed(f"{name}: {e!r}") from e
        self.results.append((name, "ok", time.monotonic() - start, what))

    def venv(self, name: str) -> Path:
        path = self.work / name
        self.run([sys.executable, "-m", "venv", path], log=name)
        return path

    # -- the checks ---------------------------------------------------------------------------

    def tools(self):
        """The tool venv, created once and reused while TOOLS is unchanged."""
        key = hashlib.sha256(json.dumps([sys.version, TOOLS]).encode()).hexdigest()[:12]
        path = self.cache / f"tools-{key}"
        marker = path / "ok"
        if not marker.exists():
            shutil.rmtree(path, ignore_errors=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.run([sys.executable, "-m", "venv", path], log="tools")
            self.run([path / "bin" / "python", "-m", "pip", "install", "-q", *TOOLS], log="tools")
            marker.write_text("\n".join(TOOLS))
        self.tool_bin = path / "bin"
        self.tool_env = dict(self.env, PATH=f"{self.tool_bin}{os.pathsep}{self.env['PATH']}")
        versions = self.run([self.tool_bin / "python", "-m", "pip", "list", "--format=json"],
                            log="tools")
        wanted = {re.split(r"[<>=]", t)[0] for t in TOOLS}
        found = pip_list(versions)
        print("  tools: " + ", ".join(f"{n} {found.get(n, '?')}" for n in sorted(wanted)))

    def check_config(self):
        if tomllib is None:
            print("  (Python 3.10 has no tomllib: config check skipped, default test-command)")
            return
        cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["cibuildwheel"]
        assert cfg.get("environment", {}).get("FASTLOSS_OPENMP") == "required", \
            "[tool.cibuildwheel] environment must set FASTLOSS_OPENMP = 'required'"
        for plat in ("linux", "macos", "windows"):
            sub = cfg.get(plat, {})
            if "environment" in sub:
                inherit = sub.get("inherit", {})
                inherit = inherit if isinstance(inherit, str) else inherit.get("environment")
                assert sub["environment"].get("FASTLOSS_OPENMP") == "required" or \
                    inherit in ("append", "prepend"), \
                    f"[tool.cibuildwheel.{plat}] environment drops FASTLOSS_OPENMP=required"
        assert cfg.get("test-command"), "no test-command"
        assert "tests" in cfg.get("test-sources", []), "test-sources must copy tests/"
        self.test_sources = cfg["test-sources"]
        cmd = cfg["test-command"]
        self.test_command = " && ".join(cmd) if isinstance(cmd, list) else cmd
        print(f"  FASTLOSS_OPENMP=required on every platform; test-sources {self.test_sources}")
        print(f"  test-command: {self.test_command}")

    def identifiers(self):
        for plat, expected in EXPECTED_IDS.items():
            out = self.run([self.tool_bin / "cibuildwheel", "--print-build-identifiers",
                            "--platform", plat], log="identifiers", cwd=REPO,
                           env=self.tool_env)
            got = {line.strip() for line in out.splitlines() if re.fullmatch(r"\S+-\S+", line.strip())}
            if got != expected:
                raise CheckFailed(f"{plat}: missing {sorted(expected - got)}, "
                                  f"unexpected {sorted(got - expected)}")
            print(f"  {plat}: {len(got)} builds ({', '.join(sorted(got)[:2])}, ...)")

    def source_copy(self):
        """The project's files (tracked, or new and not ignored) copied to the work folder.

        Builds run there: setup.py cythonizes into ./build even for an sdist, and a build in
        the checkout would collide with (or reuse) a developer's in-place build.
        """
        proc = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                               "-z"], cwd=REPO, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CheckFailed(f"git ls-files failed in {REPO}: {proc.stderr.strip()}")
        self.files = sorted(f for f in proc.stdout.split("\0") if f and (REPO / f).is_file())
        assert "setup.py" in self.files and "pyproject.toml" in self.files, self.files
        self.srcdir = self.work / "source"
        for f in self.files:
            (self.srcdir / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, self.srcdir / f)
        print(f"  {len(self.files)} files copied to {self.srcdir}")

    def build_sdist(self):
        self.source_copy()
        self.dist = self.work / "dist"
        self.run([self.tool_bin / "python", "-m", "build", "--sdist", "--outdir", self.dist,
                  self.srcdir], log="build", env=self.tool_env)
        sdists = list(self.dist.glob("*.tar.gz"))
        assert len(sdists) == 1, f"build made {sdists}"
        self.sdist = sdists[0]
        print(f"  {self.sdist.name}")

    def build_wheel(self):
        """The wheel, built from the unpacked sdist (as `python -m build` and pip do)."""
        unpacked = self.work / "sdist-unpacked"
        with tarfile.open(self.sdist) as tar:
            tar.extractall(unpacked, filter="data") if hasattr(tarfile, "data_filter") \
                else tar.extractall(unpacked)
        (top,) = list(unpacked.iterdir())
        env = dict(self.tool_env, FASTLOSS_OPENMP="required")
        self.run([self.tool_bin / "python", "-m", "build", "--wheel", "--outdir", self.dist,
                  top], log="build", env=env)
        wheels = list(self.dist.glob("*.whl"))
        assert len(wheels) == 1, f"build made {wheels}"
        self.wheel = wheels[0]
        print(f"  {self.wheel.name}")

    def check_sdist(self):
        with tarfile.open(self.sdist) as tar:
            names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        tracked = [f for f in self.files if f.startswith("src/") or
                   f in ("setup.py", "pyproject.toml")]
        missing = sorted(set(tracked) - names)
        assert not missing, f"the sdist lacks project files: {missing} (MANIFEST.in?)"
        built = sorted(n for n in names if n.endswith((".so", ".pyd", ".o")) or
                       (n.endswith(".c") and n.startswith("src/fastloss/_kernels/")))
        assert not built, f"the sdist holds build output: {built}"
        tests = sorted(n for n in names if n.startswith("tests/"))
        print(f"  {len(names)} files, all {len(tracked)} project sources; "
              f"{len(tests)} test files" + ("" if tests else " (tests/ not in the sdist)"))

    def check_wheel_contents(self):
        with zipfile.ZipFile(self.wheel) as z:
            names = z.namelist()
            meta = next(z.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
        import sysconfig
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        levels = [lv.name for lv in BUILD["levels_for"](os.uname().machine)]
        per_level = BUILD["FAMILIES"] + (BUILD["PROBES"],)
        modules = [f"{f}_{lv}" for f in per_level for lv in levels] + list(BUILD["SINGLE"])
        expected = {f"fastloss/_kernels/{m}{suffix}" for m in modules}
        expected |= {f"fastloss/{m}{suffix}" for m in BUILD["PUBLIC"]}
        modules += list(BUILD["PUBLIC"])
        missing = sorted(expected - set(names))
        assert not missing, f"the wheel lacks {missing}"
        # the C API's declarations ship (downstream modules cimport them); nothing else
        assert set(API_DECLARATIONS) <= set(names), f"the wheel lacks {API_DECLARATIONS}"
        sources = [n for n in names if n.endswith((".pyx", ".pxd", ".c", ".h"))
                   and n not in API_DECLARATIONS]
        assert not sources, f"the wheel holds sources: {sources}"
        assert "fastloss/py.typed" in names, "no py.typed"
        requires = re.findall(r"^Requires-Dist: (.*)$", meta, re.M)
        assert any(re.fullmatch(r"numpy\s*>=\s*1\.23(\.0)?", r) for r in requires), requires
        assert re.search(r"^Requires-Python: >=3\.10$", meta, re.M), "Requires-Python"
        print(f"  {len(expected)} extension modules ({', '.join(modules)}), "
              f"{', '.join(API_DECLARATIONS)} and no other sources, Requires-Dist {requires}")

    def repair(self):
        house = self.work / "wheelhouse"
        shown = self.run([self.tool_bin / "auditwheel", "show", self.wheel], log="repair",
                         env=self.tool_env)
        print("  " + " ".join(shown.split()[:40]))
        self.run([self.tool_bin / "auditwheel", "repair", "-w", house, self.wheel],
                 log="repair", env=self.tool_env)
        wheels = list(house.glob("*.whl"))
        assert len(wheels) == 1, wheels
        self.repaired = wheels[0]
        tag = self.repaired.name.rsplit("-", 1)[-1][:-4]
        assert "manylinux" in tag, f"not a manylinux wheel: {self.repaired.name}"
        unpacked = self.work / "repaired"
        with zipfile.ZipFile(self.repaired) as z:
            z.extractall(unpacked)
        gomp = sorted(p.name for p in (unpacked / "fastloss.libs").glob("libgomp*.so*")) \
            if (unpacked / "fastloss.libs").is_dir() else []
        assert len(gomp) == 1, f"expected one vendored libgomp in fastloss.libs/, found {gomp}"
        # Every module that uses OpenMP links the vendored copy; the kernel families must
        # use it.  Modules without OpenMP calls (exact, layout) need no libgomp at all: the
        # linker's --as-needed (Debian's and Ubuntu's default) leaves it out of them.
        exts = sorted((unpacked / "fastloss").rglob("*.so"))
        families = tuple(f"{f}_" for f in BUILD["FAMILIES"])
        linked = []
        for ext in exts:
            needed = self.run([self.tool_bin / "patchelf", "--print-needed", ext],
                              log="repair", quiet=True).split()
            rpath = self.run([self.tool_bin / "patchelf", "--print-rpath", ext],
                             log="repair", quiet=True).strip()
            assert "libgomp.so.1" not in needed, f"{ext.name} still needs the system libgomp"
            assert gomp[0] in needed or not (ext.name.startswith(families) or
                                             any("gomp" in n for n in needed)), \
                f"{ext.name} does not link {gomp[0]}: {needed}"
            if gomp[0] in needed:
                assert "$ORIGIN" in rpath and "fastloss.libs" in rpath, \
                    f"{ext.name}: rpath {rpath}"
                linked.append(ext.name.split(".")[0])
        print(f"  {self.repaired.name}\n  platform tag {tag} (a manylinux_2_28 container gives "
              f"manylinux_2_28 in CI); fastloss.libs/{gomp[0]} linked by the {len(linked)} "
              f"of {len(exts)} extension modules that use OpenMP ({', '.join(linked)})")

    def test_installed(self, name: str, numpy_pin: str | None, floor: str | None):
        venv = self.venv(name)
        py = venv / "bin" / "python"
        if numpy_pin is None:
            self.wheel_venv = venv
        reqs = [f"{self.repaired}[test-wheel]"] + ([f"numpy=={numpy_pin}"] if numpy_pin else [])
        self.run([py, "-m", "pip", "install", "-q", *reqs], log=name)
        listing = self.run([py, "-m", "pip", "list", "--format=json"], log=name)
        pkgs = pip_list(listing)
        assert "torch" not in pkgs, "torch must not be installed in the check venvs"
        if numpy_pin:
            assert pkgs["numpy"] == numpy_pin, pkgs["numpy"]
        print(f"  numpy {pkgs['numpy']}, pytest {pkgs.get('pytest')}, "
              f"threadpoolctl {pkgs.get('threadpoolctl')}")
        # the tests, in a folder outside the source tree, as cibuildwheel's test-sources
        rundir = self.work / f"{name}-run"
        rundir.mkdir()
        for src in self.test_sources:
            s = REPO / src
            if s.is_dir():
                shutil.copytree(s, rundir / src, ignore=shutil.ignore_patterns("__pycache__"))
            elif s.exists():
                shutil.copy2(s, rundir / src)
        n_tests = len(list((rundir / "tests").rglob("test_*.py")))
        assert n_tests, "no test files in tests/"
        (rundir / "_wheelcheck_plugin.py").write_text(PYTEST_PLUGIN)
        self.smoke(py, venv, "vendored", rundir)
        env = dict(self.env, PATH=f"{venv / 'bin'}{os.pathsep}{self.env['PATH']}",
                   VIRTUAL_ENV=str(venv), FASTLOSS_WHEEL_TEST="1",
                   FASTLOSS_CHECK_PREFIX=str(venv),
                   PYTEST_ADDOPTS="-p _wheelcheck_plugin", PYTHONPATH=str(rundir))
        command = self.test_command.replace("{project}", str(REPO)).replace("{package}", str(REPO))
        print(f"  running {n_tests} test files from {rundir}")
        self.run(["sh", "-c", command], log=name, cwd=rundir, env=env, stream=True)
        if floor:
            self.run([py, "-m", "pip", "install", "-q", f"numpy=={floor}"], log=name)
            self.smoke(py, venv, "vendored", rundir)

    def downstream(self):
        """docs/capi_example, built against the installed wheel as a downstream package
        builds (pip, no build isolation: the wheel venv's fastloss, Cython and setuptools)
        and run: check.py compares its results with the Python API's, bit for bit."""
        venv = self.wheel_venv
        py = venv / "bin" / "python"
        src = self.work / "capi_example"
        shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns(
            "build", "*.c", "*.so", "__pycache__", "*.egg-info"))
        env = dict(self.env, PATH=f"{venv / 'bin'}{os.pathsep}{self.env['PATH']}",
                   VIRTUAL_ENV=str(venv))
        self.run([py, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps", src],
                 log="downstream", env=env)
        rundir = self.work / "downstream-run"
        rundir.mkdir()
        shutil.copy2(src / "check.py", rundir / "check.py")
        out = self.run([py, "check.py"], log="downstream", cwd=rundir, env=env)
        print("  " + out.strip().splitlines()[-1])

    def smoke(self, py, venv, mode, cwd):
        script = self.work / "smoke.py"
        script.write_text(SMOKE)
        out = self.run([py, script, venv, mode], log="smoke", cwd=cwd)
        print("  " + out.strip().splitlines()[-1])

    def sdist_install(self):
        venv = self.venv("sdist-venv")
        py = venv / "bin" / "python"
        env = {k: v for k, v in self.env.items() if k != "FASTLOSS_OPENMP"}
        self.run([py, "-m", "pip", "install", "-q", self.sdist], log="sdist-install", env=env)
        rundir = self.work / "sdist-run"
        rundir.mkdir()
        self.smoke(py, venv, "source", rundir)

    # -- all of it ----------------------------------------------------------------------------

    def main(self) -> int:
        start = time.monotonic()
        print(f"fastloss wheel check: repo {REPO}, work folder {self.work}, "
              f"Python {sys.version.split()[0]}")
        if not sys.platform.startswith("linux"):
            print("tools/check_wheel.py runs on Linux only (auditwheel, libgomp)")
            return 2
        py = sys.version_info[:2]
        try:
            with self.step("tools", "build, auditwheel, patchelf, cibuildwheel in a cached venv"):
                self.tools()
            with self.step("config", "[tool.cibuildwheel]: OpenMP required, tests outside the tree"):
                self.check_config()
            with self.step("identifiers", "cibuildwheel build identifiers for linux, macos, windows"):
                self.identifiers()
            with self.step("sdist", "build the sdist; it holds every source file"):
                self.build_sdist()
                self.check_sdist()
            with self.step("build", "the wheel, from the sdist, with FASTLOSS_OPENMP=required"):
                self.build_wheel()
            with self.step("wheel", "wheel contents and metadata"):
                self.check_wheel_contents()
            with self.step("repair", "auditwheel repair vendors libgomp"):
                self.repair()
            with self.step("test", "test suite against the installed wheel, latest numpy"):
                self.test_installed("wheel-venv", None, None)
            with self.step("downstream", "docs/capi_example built against the wheel's C API"):
                self.downstream()
            if py <= (3, 12):
                floor = FLOOR_NUMPY if py <= (3, 11) else None
                what = f"test suite with numpy {OLD_NUMPY}" + (f", smoke with numpy {floor}"
                                                                if floor else "")
                with self.step("test-np1", what):
                    self.test_installed("wheel-np1-venv", OLD_NUMPY, floor)
            else:
                self.results.append(("test-np1", "skipped", 0.0,
                                     f"no numpy 1.x wheels for Python {py[0]}.{py[1]}"))
            if not self.args.no_sdist_install:
                with self.step("sdist-install", "pip install of the sdist, smoke test"):
                    self.sdist_install()
        except CheckFailed as e:
            self.summary(time.monotonic() - start)
            print(f"\nFAILED: {e}\n(work folder kept: {self.work})", file=sys.stderr)
            return 1
        self.summary(time.monotonic() - start)
        if self.args.keep:
            print(f"work folder kept: {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)
        print("check_wheel: all checks passed")
        return 0

    def summary(self, total):
        print("\n=== summary")
        for name, status, secs, what in self.results:
            print(f"  {status:8s} {name:14s} {secs:6.1f} s  {what}")
        print(f"  total {total:.1f} s")


def pip_list(output: str) -> dict:
    """{name: version} from `pip list --format=json` output (warnings may surround it)."""
    line = next(ln for ln in output.splitlines() if ln.startswith("[{"))
    return {p["name"].lower(): p["version"] for p in json.loads(line)}


def clean_env() -> dict:
    """The environment minus what would point builds or tests elsewhere."""
    drop = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "FASTLOSS_SIMD",
            "PYTEST_ADDOPTS", "PIP_USER")
    env = {k: v for k, v in os.environ.items()
           if k not in drop and not k.startswith(("CIBW_", "FASTLOSS_CHECK_"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    env.setdefault("PATH", "/usr/bin:/bin")
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--no-sdist-install", action="store_true",
                        help="skip building and installing the sdist with pip (saves a compile)")
    return Checker(parser.parse_args()).main()


if __name__ == "__main__":
    sys.exit(main())
