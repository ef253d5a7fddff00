"""The merge panel: samples table, merge in a worker, and what it says afterwards."""

from __future__ import annotations

import shutil

from gui_helpers import merge


def test_the_merge_message_goes_when_another_run_folder_is_chosen(qtbot, window, finished_run,
                                                                  tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    panel = window.processing.merge_panel
    merge(qtbot, panel, run, "0-3")
    assert panel.result_label.text().endswith(f"sample tables in {run / 'samples'}")
    panel.run_dir_edit.setText(str(tmp_path / "another_run"))  # e.g. a new run was started
    assert panel.result_label.text() == ""
    assert panel.progress_bar.value() == -1  # reset, not full from the last merge
