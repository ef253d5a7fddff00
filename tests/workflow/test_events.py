"""Progress events are throttled by time, always end a step, and carry cancellation."""

from __future__ import annotations

import multiprocessing
import pickle
import sys

import pytest

from fovflow.errors import Cancelled
from fovflow.execution import CancelToken
from fovflow.workflow.events import (
    FovFinished,
    ProgressReporter,
    RunFinished,
    StepFinished,
    StepProgress,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_throttled_to_about_ten_per_second_and_the_last_frame_is_sent() -> None:
    clock, sent = FakeClock(), []
    progress = ProgressReporter(3, sent.append, CancelToken(), clock=clock).step("segment")
    total = 1000
    for done in range(1, total + 1):
        clock.now = done * 0.002  # 500 frames per second for 2 s
        progress(done, total)
    assert 19 <= len(sent) <= 22
    assert sent[0] == StepProgress(3, "segment", 1, total)
    assert sent[-1] == StepProgress(3, "segment", total, total)
    assert [e.done for e in sent] == sorted(e.done for e in sent)


def test_slow_steps_report_every_frame() -> None:
    clock, sent = FakeClock(), []
    progress = ProgressReporter(0, sent.append, CancelToken(), clock=clock).step("track")
    for done in range(1, 6):
        clock.now = done * 1.0
        progress(done, 5)
    assert [e.done for e in sent] == [1, 2, 3, 4, 5]


def test_each_step_starts_its_own_throttle() -> None:
    sent: list[StepProgress] = []
    reporter = ProgressReporter(0, sent.append, CancelToken(), clock=FakeClock())
    reporter.step("segment")(1, 10)
    reporter.step("track")(1, 10)
    assert [e.step for e in sent] == ["segment", "track"]


def test_cancel_stops_the_work_at_the_next_frame() -> None:
    token, sent = CancelToken(), []
    progress = ProgressReporter(0, sent.append, token).step("segment")
    progress(1, 100)
    token.cancel()
    with pytest.raises(Cancelled):
        progress(2, 100)
    assert len(sent) == 1


def _exit_zero_if_cancelled(token: CancelToken) -> None:
    sys.exit(0 if token.cancelled else 1)


@pytest.mark.parametrize("cancel_first", [True, False])
def test_process_token_is_seen_by_a_spawned_process(cancel_first: bool) -> None:
    context = multiprocessing.get_context("spawn")
    token = CancelToken(context.Event())
    if cancel_first:
        token.cancel()
    child = context.Process(target=_exit_zero_if_cancelled, args=(token,))
    child.start()
    child.join(60)
    assert child.exitcode == (0 if cancel_first else 1)


@pytest.mark.parametrize(
    "event",
    [StepProgress(1, "segment", 5, 10), StepFinished(1, "segment", 0.5),
     FovFinished(2, ok=False, error="boom", traceback="Traceback ..."),
     RunFinished(report={"a": 1})],
)
def test_events_pickle_and_compare_by_value(event) -> None:
    assert pickle.loads(pickle.dumps(event)) == event
