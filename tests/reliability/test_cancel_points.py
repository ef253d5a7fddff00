"""Cancel at 23 seeded moments spread over a whole run; each leaves a sound folder and resumes.

A moment is "at the k-th milestone" of the run: the start (first progress event) or the end of
a step, or the end of a FOV; a run of 3 FOVs x 5 steps has 33. Point p draws k at random from
its twentieth of them, so the points cover every step of every FOV. Serial runs stop exactly
there; thread and process runs a little later, as a user's click would.
"""

from __future__ import annotations

import random

import pytest
from reliability_helpers import (
    FOVS,
    FRAME_DELAY,
    assert_no_orphans,
    assert_rerun_matches,
    assert_sound_after_fault,
    config_for,
    live_children,
)

from fovflow.execution import CancelToken, make_executor
from fovflow.workflow.events import FovFinished, StepFinished, StepProgress
from fovflow.workflow.run import run_workflow
from fovflow.workflow.steps import STEPS, process_fov

SPREAD = 20
POINTS = [(point, "serial" if point % 2 else "thread") for point in range(SPREAD)]
POINTS += [(point, "process") for point in (3, 10, 17)]
MILESTONES = len(FOVS) * (2 * len(STEPS) + 1)


def is_milestone(event: object) -> bool:
    return ((isinstance(event, StepProgress) and event.done == 1)
            or isinstance(event, StepFinished | FovFinished))


@pytest.mark.parametrize(("point", "kind"), POINTS)
def test_cancel_at_a_seeded_moment_leaves_a_sound_folder_and_resume_matches(
        point, kind, movie, plugins, reference_events, tmp_path, monkeypatch) -> None:
    reference, events = reference_events
    assert len([e for e in events if is_milestone(e)]) == MILESTONES
    cancel_at = 1 + int((point + random.Random(point).random()) / SPREAD * MILESTONES)
    config = config_for(movie, tmp_path, plugins, executor=kind)
    token, seen = CancelToken(), [0]
    before = live_children()

    def on_event(event) -> None:
        seen[0] += is_milestone(event)
        if seen[0] >= cancel_at:
            token.cancel()

    if kind == "process":  # one pool for the run and its rerun, as a GUI session keeps one
        monkeypatch.setenv(FRAME_DELAY, "0.005")  # frames about as slow as a serial run's
        with make_executor("process", n_workers=2, preload=(process_fov.__module__,)) as pool:
            report = run_workflow(config, executor=pool, on_event=on_event, cancel=token)
            assert_sound_after_fault(report, tmp_path, reference, live_children())
            rerun = run_workflow(config, executor=pool)
    else:
        report = run_workflow(config, on_event=on_event, cancel=token)
        assert_sound_after_fault(report, tmp_path, reference, before)
        rerun = run_workflow(config)

    assert not report.failed
    if cancel_at <= MILESTONES // 2 or (kind == "serial" and cancel_at < MILESTONES - 1):
        assert report.cancelled, f"cancelled at milestone {cancel_at}, yet nothing was"
    assert_rerun_matches(rerun, report, tmp_path, reference)
    assert_no_orphans(before)
