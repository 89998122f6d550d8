"""Build capi_example.pyx (the pyproject.toml says what the build needs)."""
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

# OpenMP for the example's prange: GCC and Clang on Linux, MSVC on Windows.  Without it
# (Apple's Clang) the prange runs serially, and the results are the same.
if sys.platform == "win32":
    openmp = (["/openmp"], [])
elif sys.platform == "darwin":
    openmp = ([], [])
else:
    openmp = (["-fopenmp"], ["-fopenmp"])

ext = Extension("capi_example", ["capi_example.pyx"],
                extra_compile_args=openmp[0], extra_link_args=openmp[1])
setup(ext_modules=cythonize([ext], language_level=3))
