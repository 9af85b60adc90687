"""The architecture as executable rules (docs/architecture.md).

- The import contracts in setup.cfg (``[importlinter]``: the shell above the folders, every folder
  importing only downward, no cycles between the modules of a folder) hold on the installed
  layout, and they do catch an upward import.
- ``pip install aiswatch`` beside the PyPI distributions named ``kibana`` and ``demod`` leaves both
  working: every module of ours lives under the one import name ``aiswatch``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, installed_layout

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(tree))
    return subprocess.run([str(LINT_IMPORTS), str(ROOT / "setup.cfg"), "--no-cache"], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    return installed_layout(tmp_path_factory.mktemp("layout"), extensions=False)


def test_import_contracts_hold(layout):
    result = _lint(layout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    analysed = int(result.stdout.split("Analyzed ")[1].split(" files")[0])
    assert analysed >= sum(1 for _ in layout.rglob("*.py")) - 1  # every module seen (setup's own copy aside)


def test_an_upward_import_breaks_the_contract(layout, tmp_path):
    tree = shutil.copytree(layout, tmp_path / "tree")
    lines = tree / "aiswatch" / "ingest" / "lines.py"
    lines.write_text(lines.read_text() + "\nfrom aiswatch.cli import main  # a library reaching up into the shell\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert "aiswatch.ingest.lines -> aiswatch.cli" in result.stdout


def _pip(venv: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_installs_beside_the_pypi_kibana_and_demod_distributions(tmp_path):
    """A venv with PyPI's ``kibana`` and ``demod``; our wheel installed next to them must not
    overwrite a single file of theirs, and both (and our command) must still import."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    theirs = _pip(venv, "install", "-q", "kibana", "demod")
    if theirs.returncode != 0:
        pytest.skip(f"could not install kibana and demod from PyPI (offline?): {theirs.stderr.strip()[-300:]}")
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    before = {p: p.read_bytes() for name in ("kibana", "demod") for p in (site / name).rglob("*.py")}
    assert before

    # the wheel from a clean copy of the tracked files (a stale build/ could add files to it)
    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        target = src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, target)
    wheel = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            str(src), "-w", str(tmp_path / "dist")], capture_output=True, text=True, timeout=600,
                           env=dict(os.environ, AISWATCH_PURE_PYTHON="1"))
    assert wheel.returncode == 0, wheel.stderr
    ours = _pip(venv, "install", "-q", "--no-deps", str(next((tmp_path / "dist").glob("aiswatch-*.whl"))), "click")
    assert ours.returncode == 0, ours.stderr

    after = {p: p.read_bytes() for name in ("kibana", "demod") for p in (site / name).rglob("*.py")}
    assert after == before  # not one of their files added, changed or removed
    record = next(site.glob("aiswatch-*.dist-info")) / "RECORD"
    roots = {line.split("/")[0] for line in record.read_text().splitlines()}
    assert roots <= {"aiswatch", record.parent.name, "..", "__pycache__"}, roots

    probe = ("import kibana, demod, aiswatch.kibana, aiswatch.es_templates\n"
             "assert kibana.__file__ != aiswatch.kibana.__file__\n"
             "print(sorted(aiswatch.kibana.SPEC_NAMES))\n")
    # from elsewhere than the checkout, whose aiswatch/ folder would shadow the installed one
    run = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "vessel_map" in run.stdout
    helped = subprocess.run([str(venv / "bin" / "aiswatch"), "--help"], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert helped.returncode == 0 and "detect" in helped.stdout, helped.stderr
