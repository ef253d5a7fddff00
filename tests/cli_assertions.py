"""How the CLI tests run `fovflow` and check a user error: exit status 2, one line, no traceback.

Results of in-process runs (typer's `CliRunner`) and of subprocesses are checked alike.
"""

from __future__ import annotations

import subprocess

from typer.testing import CliRunner, Result

from fovflow.cli.main import app


def fovflow(*args: object) -> Result:
    """``fovflow ARGS`` in this process (stdout and stderr captured apart)."""
    return CliRunner().invoke(app, [str(arg) for arg in args])


def assert_one_line_error(result: Result | subprocess.CompletedProcess[str],
                          *fragments: str) -> str:
    """Exit status 2, no traceback, one line ``error: ...`` holding every fragment; the line."""
    if isinstance(result, subprocess.CompletedProcess):
        status, output = result.returncode, result.stdout or ""
    else:
        unexpected = result.exception if not isinstance(result.exception, SystemExit) else None
        assert unexpected is None, f"{type(unexpected).__name__}: {unexpected}"
        status, output = result.exit_code, result.stdout
    assert status == 2, (status, result.stderr, output)
    assert "Traceback" not in result.stderr + output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]
