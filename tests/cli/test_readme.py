"""Every README snippet runs as written (issue 20).

Each fenced ``bash`` and ``python`` block of README.md runs, in README order, in one temporary
folder laid out like the clone after ``make demo``: ``.venv`` (this interpreter's environment)
and ``examples/`` are linked in, ``demo/sim.ome.tif`` is a small simulated movie (4 FOVs x 12
frames of 96x96, Phase and GFP) with its truth ``demo/sim.truth/``, processed into ``demo/out``
and merged with ``examples/demo_samples.yaml`` as ``make demo`` does, and
``experiment.ome.tif`` (the name the README gives "your" file) is a copy of it. A bash block
runs with ``bash -eu`` and the environment active (as after ``source .venv/bin/activate``); a
python block runs as a script (``__name__ == "__main__"``), so worker processes work as they do
for a user.

Convention for a block that cannot run here: the line just before its opening fence is
``<!-- not run: REASON -->`` (invisible on GitHub), e.g. one that needs a display, a cluster,
a package fovflow does not install, or the set-up commands themselves. ``text`` and ``yaml``
blocks (usage synopses, file contents) are never run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from fovflow.analysis.merge import merge_run, read_samples
from fovflow.io.synthetic import SimulationConfig, write_simulation
from fovflow.workflow.config import WorkflowConfig
from fovflow.workflow.run import run_workflow

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
RUNNABLE = ("bash", "python")
_FENCE = re.compile(r"^```(\w*)\s*$")
_NOT_RUN = re.compile(r"^<!-- not run: (?P<reason>\S.*?) -->$")


@dataclass(frozen=True)
class Snippet:
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    not_run: str | None  # the reason, when marked


def readme_snippets(text: str) -> list[Snippet]:
    """The fenced blocks of a Markdown text, with their `not run` marks."""
    snippets, lines, index = [], text.splitlines(), 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        before = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        mark = _NOT_RUN.match(before.strip())
        snippets.append(Snippet(index + 1, opening[1], "\n".join(lines[index + 1:end]) + "\n",
                                mark["reason"] if mark else None))
        index = end + 1
    return snippets


SNIPPETS = [s for s in readme_snippets(README.read_text(encoding="utf-8"))
            if s.language in RUNNABLE]


def test_the_parser_finds_blocks_and_their_marks() -> None:
    text = ("intro\n```bash\nfovflow --help\n```\n\n<!-- not run: needs a display -->\n"
            "```bash\nfovflow gui\n```\n```text\nfovflow run FILE\n```\n")
    found = readme_snippets(text)
    assert [(s.line, s.language, s.code, s.not_run) for s in found] == [
        (2, "bash", "fovflow --help\n", None), (7, "bash", "fovflow gui\n", "needs a display"),
        (10, "text", "fovflow run FILE\n", None)]


def test_most_readme_snippets_run() -> None:
    """A mark is for what truly cannot run here, not a way around a failing snippet."""
    marked = [s for s in SNIPPETS if s.not_run]
    assert len(SNIPPETS) >= 10 and len(marked) <= len(SNIPPETS) // 2, marked


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder like the clone after ``make demo``, with a small demo movie."""
    folder = tmp_path_factory.mktemp("clone")
    (folder / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    (folder / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    config = SimulationConfig(n_fovs=4, n_frames=12, height=96, width=96, seed=0)
    movie = write_simulation(folder / "demo" / "sim.ome.tif", config).image
    run_workflow(WorkflowConfig(input=movie, output=folder / "demo" / "out", segment_channel=0,
                                fl_channels=(1,), executor="serial"))
    merge_run(folder / "demo" / "out", read_samples(ROOT / "examples" / "demo_samples.yaml"))
    shutil.copyfile(movie, folder / "experiment.ome.tif")
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"L{s.line}-{s.language}" for s in SNIPPETS])
def test_readme_snippet_runs_as_written(snippet: Snippet, clone: Path) -> None:
    if snippet.not_run:
        pytest.skip(f"README.md line {snippet.line}: {snippet.not_run}")
    script = clone / f"snippet_line_{snippet.line}.{'sh' if snippet.language == 'bash' else 'py'}"
    script.write_text(snippet.code, encoding="utf-8")
    command = ["bash", "-eu", script] if snippet.language == "bash" else [sys.executable, script]
    environment = os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": sys.prefix, "MPLBACKEND": "Agg", "QT_QPA_PLATFORM": "offscreen",
    }
    result = subprocess.run(command, cwd=clone, env=environment, capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, (
        f"README.md line {snippet.line} ({snippet.language}) exited {result.returncode}:\n"
        f"{snippet.code}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n"
        f"{result.stderr[-3000:]}")
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
