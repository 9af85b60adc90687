"""The mypyc-compiled stage modules (setup.py, ingest/native.py): the same documents as the Python
sources, and never stale code after an edit.

Each case runs a fresh interpreter, since how the modules load is decided once per process.
Where the build compiled nothing (no C compiler), the compiled cases skip and say so.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aiswatch.ingest import native
from helpers import installed_layout

ROOT = Path(__file__).resolve().parent.parent

# the stages over simulated traffic (every message type the simulator makes, multi-fragment
# type 5 among them), printing how the modules loaded and every document
PROBE = r"""
import json, sys
import aiswatch.ingest.native, aiswatch.ingest.nmea
from aiswatch.ingest.pipeline import ListSink, Pipeline
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.lines import Line
from aiswatch.ingest.simulation import Simulator, random_fleet

sim = Simulator(random_fleet(30, seed=7, start=1_763_164_800), start=1_763_164_800, seed=7)
sink, counters = ListSink(), Counters()
pipeline = Pipeline(sink, counters)
n = 0
for t, lines in sim.messages(3600):
    for i, text in enumerate(lines):
        pipeline.feed(Line(text, t + i * 0.001, "probe", n))
        n += 1
    if n > 3000:
        break
pipeline.feed(Line("!AIVDM,1,1,,A,garbage*00", 0.0, "probe", n))
pipeline.finish()
print(json.dumps({"mode": aiswatch.ingest.native.mode(), "nmea": aiswatch.ingest.nmea.__file__,
                  "docs": sink.documents, "counters": counters.snapshot()}, sort_keys=True))
"""


def _probe(env_extra: dict | None = None, path: Path = ROOT) -> tuple[dict, str]:
    env = dict(os.environ, PYTHONPATH=str(path))
    env.pop("AISWATCH_PURE_PYTHON", None)
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def _compiled_here() -> bool:
    return native._compiled_present() and not native._stale_sources()


needs_build = pytest.mark.skipif(not _compiled_here(), reason="the ingest modules are not compiled here "
                                 "(no C compiler or mypyc at install, or sources edited since: pip install -e .)")


@needs_build
def test_compiled_and_python_sources_give_the_same_documents_and_counts():
    compiled, err = _probe()
    python, err_py = _probe({"AISWATCH_PURE_PYTHON": "1"})
    assert compiled["mode"] == "compiled" and compiled["nmea"].endswith(".so"), compiled["mode"]
    assert python["mode"] == "python (AISWATCH_PURE_PYTHON=1)" and python["nmea"].endswith("nmea.py")
    assert not err and not err_py
    assert len(compiled["docs"]) > 2500
    assert {d["msg_type"] for d in compiled["docs"]} >= {1, 5, 18, 24}
    assert compiled["docs"] == python["docs"]
    assert compiled["counters"] == python["counters"]
    assert compiled["counters"]["rejected.bad_checksum"] == 1


@needs_build
def test_an_edited_source_runs_as_python_and_says_so(tmp_path):
    """A copy of the installed tree with one compiled module's source edited: every compiled
    module loads from its source (not only the edited one), with one line on stderr."""
    copy = installed_layout(tmp_path / "tree")
    unchanged, err = _probe(path=copy)
    assert unchanged["mode"] == "compiled" and not err

    documents = copy / "aiswatch" / "ingest" / "documents.py"
    documents.write_text(documents.read_text() + "\n# edited after the build\n")
    edited, err = _probe(path=copy)
    assert edited["mode"] == "python (ingest/documents.py changed since compiled)"
    assert edited["nmea"].endswith("nmea.py")  # unchanged itself, but compiled code calls the others directly
    assert err.count("\n") == 1 and "ingest/documents.py changed since compiled" in err
    assert "pip install -e ." in err
    assert edited["docs"] == unchanged["docs"]


def test_without_extensions_the_sources_run_quietly(tmp_path):
    copy = installed_layout(tmp_path / "tree", extensions=False)
    result, err = _probe(path=copy)
    assert result["mode"] == "python" and result["nmea"].endswith("nmea.py")
    assert not err
    assert len(result["docs"]) > 2500
