"""The two knobs of parallelism are defined and checked once, and named as the user typed them."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cli_assertions import assert_one_line_error, fovflow
from fovflow.analysis.fitting import fitting_spec
from fovflow.errors import ConfigError
from fovflow.execution import ExecutorSpec, make_executor, usable_cores
from fovflow.execution.knobs import warn_if_more_than_cores
from fovflow.workflow.config import WorkflowConfig


@pytest.mark.parametrize(("workers", "in_flight", "expected"),
                         [(None, None, (usable_cores(), usable_cores())), (3, None, (3, 3)),
                          (3, 2, (3, 2)), (3, 8, (3, 3))])
def test_defaults_are_every_usable_core_and_in_flight_at_most_the_workers(
        workers, in_flight, expected) -> None:
    assert ExecutorSpec("thread", workers, in_flight).workers == expected[0]
    with make_executor("thread", n_workers=workers, max_in_flight=in_flight) as executor:
        assert (executor.n_workers, executor.max_in_flight) == expected


@pytest.mark.parametrize(("option", "value", "fragment"), [
    ("--workers", "0", "--workers must be at least 1, not 0"),
    ("--max-in-flight", "0", "--max-in-flight must be at least 1, not 0"),
    ("--batch-size", "-1", "--max-in-flight must be at least 1, not -1"),
])
def test_a_bad_knob_on_the_command_line_is_one_line_naming_the_option(
        small_image: Path, tmp_path: Path, option: str, value: str, fragment: str) -> None:
    result = fovflow("run", small_image, "-o", tmp_path / "out", "--fl", "1", option, value)
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "out").exists()


def test_fit_workers_is_checked_by_the_same_rule(tmp_path: Path) -> None:
    table = tmp_path / "ctrl.csv"
    table.write_text("# Time units: h\ntime,fov_000_cell_1\n0,1\n1,2\n")
    assert_one_line_error(fovflow("fit", table, "--workers", "0"),
                          "--workers must be at least 1, not 0")


def test_the_old_batch_size_key_and_option_still_set_max_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("input: movie.ome.tif\noutput: out\nbatch_size: 3\nn_workers: 4\n")
    config = WorkflowConfig.load(path)
    assert config.max_in_flight == 3
    assert config.execution == ExecutorSpec("process", 4, 3)
    assert "batch_size" not in config.to_dict() and config.to_dict()["max_in_flight"] == 3


def test_a_config_file_knob_of_the_wrong_type_names_its_key() -> None:
    with pytest.raises(ConfigError, match=r"n_workers must be a whole number, not 'two' "
                                          r"\(--workers\)"):
        WorkflowConfig(input="movie.ome.tif", output="out", n_workers="two")


def test_a_scheduler_needs_dask_and_a_dask_scheduler_takes_no_n_workers() -> None:
    with pytest.raises(ConfigError, match="needs the dask executor"):
        ExecutorSpec("process", scheduler="tcp://localhost:8786")
    pytest.importorskip("distributed")
    from fovflow.execution import DaskExecutor

    with pytest.raises(ConfigError, match=r"--workers\) sizes a local Dask cluster"):
        DaskExecutor(2, scheduler="tcp://127.0.0.1:1")  # refused before connecting


def test_more_workers_than_cores_is_one_warning_per_executor(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="fovflow.execution"):
        warn_if_more_than_cores(usable_cores())
        assert not caplog.records
        with make_executor("thread", n_workers=usable_cores() + 1):
            pass
    [record] = caplog.records
    assert record.getMessage().startswith(f"--workers {usable_cores() + 1} is more than the "
                                          f"{usable_cores()} cores")


def test_fitting_runs_in_the_callers_thread_for_one_worker_else_in_processes() -> None:
    assert fitting_spec(1) == ExecutorSpec("serial", 1)
    assert fitting_spec(2) == ExecutorSpec("process", 2)
    assert fitting_spec(None).workers == usable_cores()


# The backends load when asked for: fitting in the caller's thread imports no pool at all.
LAZY = """
import sys
import fovflow.execution as execution
from fovflow.analysis.fitting import fit_traces
before = sorted(m for m in sys.modules if m.startswith(("fovflow.execution.", "distributed")))
execution.ThreadExecutor
after = sorted(m for m in sys.modules if m.startswith("fovflow.execution."))
print(before, after)
"""


def test_backends_load_only_when_first_used() -> None:
    done = subprocess.run([sys.executable, "-c", LAZY], capture_output=True, text=True,
                          check=True, timeout=60)
    before, after = done.stdout.strip().split("] [")
    assert "thread" not in before and "process" not in before and "dask" not in before
    assert "distributed" not in before
    assert "fovflow.execution.thread" in after


def test_run_config_saved_with_a_run_names_the_knobs_once(tmp_path: Path) -> None:
    config = WorkflowConfig(input="movie.ome.tif", output=tmp_path, n_workers=2, max_in_flight=1)
    config.save(tmp_path / "run_config.yaml")
    saved = yaml.safe_load((tmp_path / "run_config.yaml").read_text())
    assert (saved["n_workers"], saved["max_in_flight"]) == (2, 1)
    assert WorkflowConfig.load(tmp_path / "run_config.yaml") == config
