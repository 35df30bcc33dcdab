"""Output-folder safety: the reproducers of data loss (D2, D5, D13, H4, H11)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from _report_data import report_args, write_files

from kdmetrics.cli import main
from kdmetrics.io.output import (
    MARKER,
    OutputFolderError,
    check_output_folder,
    remove_stale_temporaries,
    write_output_folder,
)


def _snapshot(folder) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture()
def inputs(tmp_path):
    d = tmp_path / "inputs"
    d.mkdir()
    return d, write_files(d)


@pytest.mark.parametrize("out", [".", ""])
def test_d2_out_current_directory_refused_nothing_deleted(inputs, monkeypatch, capsys, out):
    d, paths = inputs
    monkeypatch.chdir(d)
    before = _snapshot(d)
    assert main(report_args(paths, out)[:-1] + ["--overwrite", "--quiet"]) == 2
    assert "error" in capsys.readouterr().err
    assert _snapshot(d) == before


def test_out_ancestor_of_cwd_refused(inputs, monkeypatch):
    d, paths = inputs
    sub = d / "deeper"
    sub.mkdir()
    monkeypatch.chdir(sub)
    before = _snapshot(d)
    assert main([*report_args(paths, d), "--overwrite"]) == 2
    assert _snapshot(d) == before


def test_d5_out_folder_holding_inputs_refused(inputs):
    d, paths = inputs
    (d / MARKER).write_text("even a marked folder is refused when it holds inputs\n")
    before = _snapshot(d)
    assert main([*report_args(paths, d), "--overwrite"]) == 2
    assert _snapshot(d) == before


def test_foreign_non_empty_folder_refused_even_with_overwrite(inputs, tmp_path):
    _, paths = inputs
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    assert main([*report_args(paths, out), "--overwrite"]) == 2
    assert (out / "thesis.tex").read_text() == "precious"


def test_own_folder_is_replaced_with_overwrite(inputs, tmp_path):
    _, paths = inputs
    out = tmp_path / "rep"
    assert main(report_args(paths, out)) == 0
    assert (out / MARKER).is_file()
    (out / "stale.csv").write_text("from an older run")
    assert main(report_args(paths, out)) == 2  # not empty, no --overwrite
    assert main([*report_args(paths, out), "--overwrite"]) == 0
    assert not (out / "stale.csv").exists() and (out / "report.md").is_file()
    assert not [p for p in tmp_path.iterdir() if ".kdmetrics-" in p.name]


def test_empty_user_folder_is_used(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    files = write_output_folder(
        "t", str(out), lambda d: open(os.path.join(d, "a.txt"), "w").close()
    )
    assert files == ["a.txt"]


def test_h11_folder_mode_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "o"
        write_output_folder("t", str(out), lambda d: None)
    finally:
        os.umask(old)
    assert (out.stat().st_mode & 0o777) == 0o755


def test_d13_parent_not_a_folder_fails_before_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputFolderError, match="not a folder"):
        check_output_folder("t", str(blocker / "out"))


def test_error_is_a_value_error():
    assert issubclass(OutputFolderError, ValueError)


def test_failed_write_leaves_nothing(tmp_path):
    out = tmp_path / "o"

    def boom(d):
        open(os.path.join(d, "half.csv"), "w").close()
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_output_folder("t", str(out), boom)
    assert list(tmp_path.iterdir()) == []


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_h4_stale_temporaries_removed_only_when_ours_and_dead(tmp_path):
    target = tmp_path / "rep"
    dead = _dead_pid()
    ours = tmp_path / f".rep.kdmetrics-tmp-{dead}-abcd"
    ours.mkdir()
    (ours / MARKER).write_text("")
    unmarked = tmp_path / f".rep.kdmetrics-tmp-{dead}-ef01"
    unmarked.mkdir()
    alive = tmp_path / f".rep.kdmetrics-tmp-{os.getpid()}-2345"
    alive.mkdir()
    (alive / MARKER).write_text("")
    removed = remove_stale_temporaries(str(target))
    assert removed == [str(ours)]
    assert unmarked.exists() and alive.exists()


def test_h4_kill_at_random_points_leaves_no_stray_folders(inputs, tmp_path):
    """SIGKILL a report at several points; the next run cleans up after it."""
    _, paths = inputs
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "kdmetrics", *report_args(paths, out)[:-1], "--overwrite"]
    for delay in (0.5, 1.5, 2.5, 3.5):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert main([*report_args(paths, out), "--overwrite"]) == 0
    assert not [p.name for p in tmp_path.iterdir() if ".kdmetrics-" in p.name]
    assert (out / "report.md").is_file()
