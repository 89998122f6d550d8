"""Build fastloss's Cython kernels with OpenMP, once per instruction-set level.

Layout of the build
-------------------
What is built is written once, in src/fastloss/_build.py (read here without importing
fastloss):

* ``fastloss._kernels.<family>_<level>``: each kernel family (pointwise, softmax) compiled
  for each vector instruction-set level of the target: ``baseline`` everywhere, plus
  ``avx2`` (AVX2 + FMA) and ``avx512`` (AVX-512 F/DQ/BW/VL) on x86-64.  The wheel stays
  portable; fastloss._dispatch loads the best level the CPU supports at import time.
* ``fastloss._kernels.probes_<level>``: the test and benchmark hooks, per level, loaded
  only when asked for.
* ``fastloss._kernels.cpu`` and ``fastloss._kernels.checks``: compiled once, baseline.
* ``fastloss.api``: the C-level API (_build.PUBLIC), compiled once, baseline; it calls the
  dispatched level's kernels through the C entry points they export (entries.pxd).  Its
  declarations, src/fastloss/api.pxd, ship in the wheel (pyproject's package-data).

Generated code
--------------
The pointwise family's tile loop and its table of kernels are generated from the scalar
helpers of pointwise_losses.pxi (``generate_pointwise_tiles``) into build/generated.

Compiler flags
--------------
_build.GCC_FLAGS: ``-O3`` plus ``-fno-math-errno`` (sqrt becomes one instruction instead of
a libm call that may set errno) and ``-fno-trapping-math`` (lets the compiler turn
branch-free selects into vector blends; Clang's and MSVC's default).  Neither changes a
single computed value: NaN, infinities and signed zeros keep their IEEE meaning.  The
fast-math flag (which does change values) and native-architecture tuning (which makes
wheels non-portable) are never used.
fastloss's own `cdef inline` helpers are forced inline (force_inline_own_helpers), and
Clang gets a larger budget of run-time overlap checks (CLANG_FLAGS), so that the loops
vectorize with either compiler.

OpenMP
------
Detected by compiling a test program.  Without it the kernels build serially and a loud
warning is printed.  ``FASTLOSS_OPENMP=required`` turns that into an error (wheel builds set
it, so a serial wheel cannot ship); ``FASTLOSS_OPENMP=off`` builds serially on purpose.
On macOS, libomp is looked up under ``FASTLOSS_LIBOMP_PREFIX`` or Homebrew's prefixes.

Sanitizers
----------
``FASTLOSS_SANITIZE=address,undefined`` (GCC or Clang) builds every module with those
sanitizers, frame pointers and debug information, and links their runtimes, the OpenMP
probe's test program included (else the probe fails to link and the build turns serial).
tools/sanitize.sh uses it; never set it for a wheel that ships.
"""
import json
import os
import platform
import re
import runpy
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
from types import SimpleNamespace

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

KERNELS = "src/fastloss/_kernels"
GENERATED = "build/generated"
BUILD = SimpleNamespace(**runpy.run_path("src/fastloss/_build.py"))
DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "initializedcheck": False,
    "cdivision": True,
}


def target_arch():
    """The CPU architecture the wheel is for (honours macOS cross builds' ARCHFLAGS)."""
    archs = os.environ.get("ARCHFLAGS", "").split("-arch")[1:]
    if len(archs) == 1:
        return archs[0].strip()
    if len(archs) > 1:
        return "universal"
    plat = sysconfig.get_platform()      # e.g. linux-x86_64, macosx-11.0-arm64, win-amd64
    return plat.rsplit("-", 1)[-1] if "-" in plat else platform.machine()


def levels():
    """Instruction-set levels to build for this target (names, lowest first)."""
    return tuple(lv.name for lv in BUILD.levels_for(target_arch()))


OWN_FUNCTION = "__pyx_f_8fastloss_"     # Cython's C names of fastloss's cdef functions


def force_inline_own_helpers(c_files):
    """Make fastloss's own `cdef inline` functions always-inline in Cython's C output.

    The kernels' loops only vectorize once the scalar helpers (exp, log, the loss
    formulas) are part of the loop body, and how far a compiler inlines on its own varies
    between versions.  Cython spells every `cdef inline` as CYTHON_INLINE, its own utility
    functions too, and some of those are recursive (__Pyx_PyLong_As_int in Cython 3.1-3.3),
    which GCC >= 13 refuses to force.  So only the declarations and definitions of
    fastloss's functions (C names starting with OWN_FUNCTION, fused specialisations
    included) are switched to FL_CYTHON_INLINE.  Idempotent: Cython rewrites the file
    only when a .pyx/.pxd changes.
    """
    for path in c_files:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
        changed = 0
        for i, line in enumerate(lines):
            if (line.startswith("static CYTHON_INLINE ")
                    and OWN_FUNCTION in line.split("(", 1)[0]):
                lines[i] = line.replace("CYTHON_INLINE", "FL_CYTHON_INLINE", 1)
                changed += 1
        if changed:
            with open(path, "w", encoding="utf-8") as f:
                f.writelines(lines)
        elif not any(line.startswith("static FL_CYTHON_INLINE ") for line in lines):
            print(f"fastloss: no cdef inline function found to force-inline in {path}",
                  file=sys.stderr)


POINTWISE_HELPER = re.compile(r"^cdef inline floating closs_(\w+)\(([^)]*)\)", re.M)
POINTWISE_STAGE = re.compile(r"^cdef inline (\w+) cstage_(\w+)\(([^)]*)\)", re.M)
POINTWISE_SIGNATURE = re.compile(r"floating \w+, floating \w+, floating \w+, floating \w+,\s*"
                                 r"floating\* \w+, floating\* \w+")
POINTWISE_STAGED_SIGNATURE = re.compile(r"floating \w+, const floating\* \w+, floating \w+,"
                                        r"\s*floating \w+,\s*floating \w+,\s*floating\* \w+,"
                                        r"\s*floating\* \w+")
POINTWISE_STAGE_SIGNATURE = re.compile(r"const floating\* \w+, const floating\* \w+,"
                                       r"\s*Py_ssize_t \w+,\s*floating\* \w+")


def generate_pointwise_tiles():
    """Write build/generated/pointwise_tiles.pxi: KERNELS (helper name -> number, in the
    order of pointwise_losses.pxi) and tile(), one loop per helper in a weighted and an
    unweighted form, after its stage if it has one (cstage_<name>, a function over the
    tile: see that file).  A loss class names its helper; nothing else lists the pointwise
    losses."""
    with open(f"{KERNELS}/pointwise_losses.pxi", encoding="utf-8") as f:
        text = f.read()
    helpers = POINTWISE_HELPER.findall(text)
    names = [name for name, _ in helpers]
    stages = set()
    for returns, name, args in POINTWISE_STAGE.findall(text):
        if (name not in names or returns != "void"
                or not POINTWISE_STAGE_SIGNATURE.fullmatch(args.strip())):
            raise SystemExit(f"setup.py: cstage_{name} in pointwise_losses.pxi needs a helper "
                             f"closs_{name} and the stages' signature, void (const floating* "
                             f"x, const floating* t, Py_ssize_t n, floating* e); see that file")
        stages.add(name)
    for name, args in helpers:
        staged = name in stages
        signature = POINTWISE_STAGED_SIGNATURE if staged else POINTWISE_SIGNATURE
        if not signature.fullmatch(args.strip()):
            raise SystemExit(f"setup.py: closs_{name} in pointwise_losses.pxi does not have the "
                             f"helpers' signature (x, {'const floating* e, ' if staged else ''}"
                             f"t, pw, param, g, h); see that file")
    if not names:
        raise SystemExit("setup.py: no closs_<name> helper found in pointwise_losses.pxi")
    lines = [
        "# Generated by setup.py (generate_pointwise_tiles) from the closs_<name> helpers of",
        "# pointwise_losses.pxi.  Do not edit: add a helper there instead.",
        "",
        "#: The pointwise kernels: helper name -> the number fastloss.losses passes.",
        "KERNELS = {" + ", ".join(f"{n!r}: {i}" for i, n in enumerate(names)) + "}",
        "",
        "",
        "cdef inline void tile(int kernel, const floating* x, const floating* t,",
        "                      const floating* w, const floating* pw, Py_ssize_t n, floating* l,",
        "                      floating* g, floating* h, floating s, floating hs, floating param,",
        "                      floating* e, bint weighted, Mode m) noexcept nogil:",
        '    """One loss over a tile of n contiguous elements: one branch-free loop per',
        '    loss, in two forms: with the weights and pos_weight w[i] and pw[i], or without',
        "    either (weighted false: 1, a constant, where an unweighted call would multiply by",
        "    a tile of ones; the same bits, fewer operations).  A staged loss first runs",
        '    its stage over the tile, into e (STAGE_VALUES tiles)."""',
        "    cdef Py_ssize_t i",
        "    cdef floating li, gi, hi",
        "    cdef floating one = 1",
    ]
    for i, name in enumerate(names):
        lines.append(f"    {'if' if i == 0 else 'elif'} kernel == {i}:")
        staged = name in stages
        if staged:
            lines += [f"        cstage_{name}(x, t, n, e)"]
        stage = "&e[i], " if staged else ""
        for cond, wi, pwi in (("if weighted:", "w[i]", "pw[i]"), ("else:", "one", "one")):
            lines += [f"        {cond}",
                      "            for i in range(n):",
                      f"                li = closs_{name}(x[i], {stage}t[i], {pwi}, param, "
                      f"&gi, &hi)",
                      f"                put(l, g, h, i, {wi}, s, hs, li, gi, hi, m)"]
    text = "\n".join(lines) + "\n"
    os.makedirs(GENERATED, exist_ok=True)
    path = f"{GENERATED}/pointwise_tiles.pxi"
    old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
    if old != text:                     # unchanged: keep the time stamp, no recompile
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def extensions():
    include = [KERNELS, np.get_include()]
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
              ("NPY_TARGET_VERSION", "NPY_1_23_API_VERSION")]
    generate_pointwise_tiles()
    cython_include = ["src", GENERATED]
    exts = []
    for level in levels():
        for family in BUILD.FAMILIES + (BUILD.PROBES,):
            ext = Extension(f"fastloss._kernels.{family}_{level}", [f"{KERNELS}/{family}.pyx"],
                            include_dirs=include, define_macros=macros)
            # the same .pyx under another module name: Cython needs its own output folder
            exts += cythonize([ext], build_dir=f"build/cython/{level}",
                              compiler_directives=DIRECTIVES, include_path=cython_include,
                              quiet=True)
    # modules built once: the kernels' helpers (SINGLE) and the public C-level API (PUBLIC)
    once = [(f"fastloss._kernels.{name}", f"{KERNELS}/{name}.pyx") for name in BUILD.SINGLE]
    once += [(f"fastloss.{name}", f"src/fastloss/{name}.pyx") for name in BUILD.PUBLIC]
    for module, source in once:
        ext = Extension(module, [source], include_dirs=include, define_macros=macros)
        exts += cythonize([ext], build_dir="build/cython/single",
                          compiler_directives=DIRECTIVES, include_path=cython_include,
                          quiet=True)
    for ext in exts:
        force_inline_own_helpers(ext.sources)
        suffix = ext.name.rsplit("_", 1)[-1]
        ext.fl_level = suffix if suffix in levels() else "baseline"
    return exts


OPENMP_TEST = textwrap.dedent("""
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
""")


CLANG_TEST = textwrap.dedent("""
    #ifndef __clang__
    #error not Clang
    #endif
    int fl_clang_test(int x) { return x + 1; }
""")

#: Clang only: vectorize loops that need more run-time overlap checks than its default of 8.
#: A tile loop reads up to 7 arrays (BCE with weights and pos_weight: x, its stage's three,
#: t, w, pw) and writes up to 3; without this,
#: Clang leaves the BCE loops scalar, 10x slower.  (The arrays never overlap: `out` is
#: checked for that.)
CLANG_FLAGS = ["-mllvm", "-runtime-memory-check-threshold=32"]


def sanitizer_flags():
    """(compile args, link args) for FASTLOSS_SANITIZE (see the module docstring)."""
    wanted = os.environ.get("FASTLOSS_SANITIZE", "").strip()
    if not wanted:
        return [], []
    flag = f"-fsanitize={wanted}"
    compile_args = [flag, "-fno-omit-frame-pointer", "-g"]
    if "undefined" in wanted:
        compile_args.append("-fno-sanitize-recover=undefined")
    return compile_args, [flag]


class BuildExt(build_ext):
    """Adds the compiler-specific flags, OpenMP detection and the build record."""

    def _compiles(self, source, flags):
        """Whether this compiler compiles `source` with `flags`."""
        tmp = tempfile.mkdtemp()
        try:
            src = os.path.join(tmp, "flag_test.c")
            with open(src, "w") as f:
                f.write(source)
            self.compiler.compile([src], output_dir=tmp, extra_postargs=flags)
            return True
        except Exception:
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _try_openmp(self, compile_args, link_args, include_dirs=(), library_dirs=()):
        tmp = tempfile.mkdtemp()
        san_compile, san_link = sanitizer_flags()
        try:
            src = os.path.join(tmp, "omp_test.c")
            with open(src, "w") as f:
                f.write(OPENMP_TEST)
            objs = self.compiler.compile([src], output_dir=tmp,
                                         extra_postargs=compile_args + san_compile,
                                         include_dirs=list(include_dirs))
            self.compiler.link_executable(objs, "omp_test", output_dir=tmp,
                                          extra_postargs=link_args + san_link,
                                          library_dirs=list(library_dirs))
            return True
        except Exception:
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _openmp(self):
        """(compile args, link args, include dirs, library dirs) for OpenMP, or None."""
        if self.compiler.compiler_type == "msvc":
            candidates = [(["/openmp"], [], [], [])]
        elif sys.platform == "darwin":
            prefixes = [os.environ.get("FASTLOSS_LIBOMP_PREFIX", ""), "/opt/homebrew/opt/libomp",
                        "/usr/local/opt/libomp"]
            candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"], [f"{p}/include"], [f"{p}/lib"])
                          for p in prefixes if p and os.path.isdir(p)]
            candidates.append((["-fopenmp"], ["-fopenmp"], [], []))
        else:
            candidates = [(["-fopenmp"], ["-fopenmp"], [], [])]
        for cand in candidates:
            if self._try_openmp(*cand):
                return cand
        return None

    def build_extensions(self):
        want = os.environ.get("FASTLOSS_OPENMP", "auto").lower()
        if want not in ("auto", "required", "off"):
            raise SystemExit(f"FASTLOSS_OPENMP must be auto, required or off, not {want!r}")
        omp = None if want == "off" else self._openmp()
        if omp is None and want == "required":
            raise SystemExit("FASTLOSS_OPENMP=required but this compiler cannot build OpenMP code")
        if omp is None and want == "auto":
            bar = "!" * 78
            print(f"\n{bar}\n  fastloss: no OpenMP support found in the C compiler; the kernels are\n"
                  f"  built SERIAL and will use one core.  Install an OpenMP runtime (libgomp,\n"
                  f"  libomp) or set FASTLOSS_OPENMP=required to make this an error.\n{bar}\n",
                  file=sys.stderr)
        msvc = self.compiler.compiler_type == "msvc"
        # fastloss's `cdef inline` helpers are always inlined (force_inline_own_helpers);
        # its C helpers say so themselves (FL_INLINE in fl_inline.h).
        if msvc:
            base = [*BUILD.MSVC_FLAGS, BUILD.FORCE_INLINE_MSVC]
        else:
            base = [*BUILD.GCC_FLAGS, BUILD.FORCE_INLINE_GCC, "-Wno-unused-function",
                    "-Wno-unreachable-code"]
        if not msvc and self._compiles(CLANG_TEST, CLANG_FLAGS):
            base += CLANG_FLAGS
        level_flags = {lv.name: list(lv.msvc if msvc else lv.gcc) for lv in BUILD.LEVELS}
        if omp is None and not msvc:
            base.append("-fopenmp-simd")      # simd.h's `omp simd` without the runtime
        san_compile, san_link = sanitizer_flags()
        base += san_compile
        for ext in self.extensions:
            ext.extra_compile_args = base + level_flags[ext.fl_level] + (omp[0] if omp else [])
            ext.extra_link_args = (omp[1] if omp else []) + san_link
            if omp:
                ext.include_dirs += list(omp[2])
                ext.library_dirs += list(omp[3])
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1
        self._write_build_info(omp, base, level_flags)
        super().build_extensions()

    def _write_build_info(self, omp, base, level_flags):
        compiler = getattr(self.compiler, "compiler_so", None) or [self.compiler.compiler_type]
        version = ""
        if self.compiler.compiler_type != "msvc":
            try:
                version = subprocess.run([compiler[0], "--version"], capture_output=True,
                                         text=True, timeout=30).stdout.splitlines()[0]
            except Exception:
                pass
        info = {
            "openmp": omp is not None,
            "openmp_flags": (omp[0] + omp[1]) if omp else [],
            "compiler": compiler[0],
            "compiler_version": version,
            "cflags": base,
            "levels": {lv: level_flags[lv] for lv in levels()},
            "target": target_arch(),
            "python": sys.version.split()[0],
            "numpy_build": np.__version__,
        }
        # Baked into the cpu module as a C string, so that every kind of install has it.
        folder = os.path.join(self.build_temp, "fl_generated")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "fl_build_info.h"), "w") as f:
            f.write(f"#define FL_BUILD_INFO {json.dumps(json.dumps(info))}\n")
        for ext in self.extensions:
            ext.include_dirs.append(folder)

setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
