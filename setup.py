"""Build: the metadata is in setup.cfg; this file only compiles the ingest hot path with mypyc.

The modules in ``ingest.native.COMPILED`` (a line's way from text to document, the decode
process's hand-over, the sink) run for every message; compiled by mypyc they take about a
third less CPU (bench/ingest.py prints both forms). They stay plain Python modules as well:

- no C compiler, or mypy/mypyc failing: the build says so and installs the Python sources alone
  (each extension is optional; a build that did not produce all of them keeps none);
- ``AISWATCH_PURE_PYTHON=1`` while installing: no compilation at all;
- at run time ``ingest/native.py`` loads the sources instead when ``AISWATCH_PURE_PYTHON=1`` is
  set, or when a source changed after it was compiled (an edit, a ``git pull``), and says so:
  ``pip install -e .`` compiles again.
"""
from __future__ import annotations

import importlib.machinery
import os
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "ingest"))
from native import COMPILED, PACKAGE, SOURCES_FILE, source_digests  # noqa: E402  (ingest/native.py, read without importing ingest)

sys.path.pop(0)
STAGE = HERE / "build" / "mypyc-src"


def _staged_sources() -> list[str]:
    """The COMPILED sources copied into ``build/mypyc-src/aiswatch/ingest/``: mypy names a module
    after its path, and these must compile as ``aiswatch.ingest.<name>``, where setup.cfg's
    package_dir installs them, not as ``ingest.<name>``."""
    package = STAGE.joinpath(*PACKAGE.split("."))
    if STAGE.exists():
        shutil.rmtree(STAGE)
    package.mkdir(parents=True)
    for level in range(1, len(PACKAGE.split(".")) + 1):
        STAGE.joinpath(*PACKAGE.split(".")[:level], "__init__.py").touch()
    paths = []
    for name in COMPILED:
        shutil.copyfile(HERE / "ingest" / f"{name}.py", package / f"{name}.py")
        paths.append(str((package / f"{name}.py").relative_to(HERE)))
    return paths


def _ext_modules() -> list:
    if os.environ.get("AISWATCH_PURE_PYTHON") == "1":
        print("aiswatch: AISWATCH_PURE_PYTHON=1: the ingest modules are installed as Python only")
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("aiswatch: mypyc is not available: the ingest modules are installed as Python only")
        return []
    try:
        # third-party modules are typed Any, whether or not the build environment has them
        # (pip's isolated one does not): the same extensions everywhere
        cwd = os.getcwd()
        os.chdir(HERE)  # mypy names modules by their path from here: build/mypyc-src/aiswatch/...
        try:
            modules = mypycify(["--follow-imports=skip", "--ignore-missing-imports",
                                *_staged_sources()],
                               opt_level="3", group_name=f"{PACKAGE}.native_lib")
        finally:
            os.chdir(cwd)
    except (Exception, SystemExit) as exc:  # mypy found an error: say so, install the sources
        print(f"aiswatch: mypyc could not compile the ingest modules ({exc!r}): installed as Python only")
        return []
    for ext in modules:
        ext.optional = True  # no compiler: a warning, and the Python sources are used
    return modules


class BuildExt(build_ext):
    """build_ext, then the record of what was compiled (``ingest/native-sources.txt``: each
    source's SHA-256), written only when every extension was built; otherwise the built ones
    are removed again, so that a half-compiled set never runs."""

    def run(self) -> None:
        out_dir = HERE / "ingest" if self.inplace else Path(self.build_lib).joinpath(*PACKAGE.split("."))
        suffixes = importlib.machinery.EXTENSION_SUFFIXES
        record = out_dir / SOURCES_FILE
        # an in-place (editable) build: what an earlier build left must not outlive this one
        if self.inplace:
            for path in out_dir.iterdir():
                if path.name == SOURCES_FILE or any(path.name.endswith(s) for s in suffixes):
                    path.unlink()
        super().run()
        built = [Path(self.get_ext_fullpath(ext.name)) for ext in self.extensions]  # in place or not
        if self.extensions and all(p.exists() for p in built):
            out_dir.mkdir(parents=True, exist_ok=True)
            record.write_text("".join(f"{name} {digest}\n" for name, digest in source_digests().items()))
            print(f"aiswatch: compiled {len(COMPILED)} ingest modules with mypyc")
        elif self.extensions:
            for p in built:
                if p.exists():
                    p.unlink()
            print("aiswatch: the ingest modules could not all be compiled (see above): installed as Python only")


setup(ext_modules=_ext_modules(), cmdclass={"build_ext": BuildExt})
