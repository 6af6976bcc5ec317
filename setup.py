"""Build hook for the one compiled module, ``nf._burst`` (burst socket I/O for the NF worker).

Everything else is in pyproject.toml. The extension is optional: without a C compiler the build
goes on and ``nf.burst`` uses its pure-Python equivalents (same behaviour, slower). Set
``DEFT_BUILD_EXT=0`` to build a pure wheel on purpose, e.g. for an NF image whose Python minor
version differs from the controller's (the docker role does this).
"""

import os

from setuptools import Extension, setup

ext_modules = []
if os.environ.get("DEFT_BUILD_EXT", "1") != "0":
    ext_modules.append(Extension("nf._burst", ["nf/_burst.c"], optional=True,
                                 extra_compile_args=["-O2", "-Wall", "-Wextra"]))

setup(ext_modules=ext_modules)
