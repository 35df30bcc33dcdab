"""Safe output folders for every command that writes one (report, compare, demo).

The rules, checked before any computation:

* never write to, delete or replace the current directory, one of its
  ancestors, the filesystem root or the home directory;
* never replace a folder that holds an input file;
* never replace a non-empty folder that kdmetrics did not write: every folder
  kdmetrics writes carries a marker file (:data:`MARKER`), and ``overwrite``
  replaces only folders that have it;
* check that the parent folder is writable before the work starts.

Writing goes to a temporary sibling folder (marked first thing), renamed into
place at the end, so a failure or a kill never leaves a half-written target.
Temporary folders left by a killed run are recognised by their name (which
carries the writer's process id) and marker, and removed by the next run once
that process is gone. Folders are created with the user's umask.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kdmetrics.errors import KdMetricsError

MARKER = ".kdmetrics-output"
_TMP = ".kdmetrics-tmp-"
_OLD = ".kdmetrics-old-"


class OutputFolderError(KdMetricsError):
    """An output folder kdmetrics refuses to write (a user error: exit 2)."""


def _real(path: str) -> str:
    return os.path.realpath(os.path.abspath(path))


def _is_within(path: str, folder: str) -> bool:
    """True when ``path`` is ``folder`` or lies below it (both real paths)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def is_kdmetrics_folder(path: str) -> bool:
    return os.path.isfile(os.path.join(path, MARKER))


def check_output_folder(
    func: str, out_dir: str, *, overwrite: bool = False, inputs: Iterable[str] = ()
) -> str:
    """Checks ``out_dir`` against the rules above; returns its absolute real path.

    Call it before any work, so a refusal costs nothing.
    """
    if not isinstance(out_dir, str | os.PathLike) or not str(out_dir).strip():
        raise OutputFolderError(f"{func}: --out must name a folder, got {out_dir!r}")
    target = _real(str(out_dir))
    cwd = _real(os.getcwd())
    protected = {os.sep: "the filesystem root", _real(os.path.expanduser("~")): "your home folder"}
    if target in protected:
        raise OutputFolderError(f"{func}: {out_dir}: refusing to write into {protected[target]}")
    if _is_within(cwd, target):
        what = "the current directory" if target == cwd else "an ancestor of the current directory"
        raise OutputFolderError(
            f"{func}: {out_dir}: is {what}; kdmetrics never replaces it. Name a new folder."
        )
    for path in inputs:
        if _is_within(_real(str(path)), target):
            raise OutputFolderError(
                f"{func}: {out_dir}: holds the input file {path}; choose another output folder"
            )
    if os.path.lexists(target):
        if not os.path.isdir(target):
            raise OutputFolderError(f"{func}: {out_dir}: exists and is not a folder")
        if os.listdir(target):
            if not is_kdmetrics_folder(target):
                raise OutputFolderError(
                    f"{func}: {out_dir}: exists, is not empty and was not written by kdmetrics "
                    "(no marker file); kdmetrics replaces only its own output folders"
                )
            if not overwrite:
                raise OutputFolderError(
                    f"{func}: {out_dir}: exists and is not empty (use --overwrite to replace it)"
                )
    parent = os.path.dirname(target)
    existing = parent
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise OutputFolderError(f"{func}: {out_dir}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputFolderError(
            f"{func}: {out_dir}: cannot write in {existing} (permission denied)"
        )
    return target


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(target: str) -> list[str]:
    """Removes temporary siblings of ``target`` left by killed kdmetrics runs.

    Only folders named by kdmetrics for this target, holding its marker, whose
    writer process is gone, are removed; anything else is left alone.
    """
    parent, base = os.path.split(target)
    removed: list[str] = []
    if not os.path.isdir(parent):
        return removed
    for name in os.listdir(parent):
        for kind in (_TMP, _OLD):
            prefix = f".{base}{kind}"
            if not name.startswith(prefix):
                continue
            pid_text = name[len(prefix) :].split("-", 1)[0]
            path = os.path.join(parent, name)
            if (
                pid_text.isdigit()
                and not _pid_alive(int(pid_text))
                and os.path.isdir(path)
                and is_kdmetrics_folder(path)
            ):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


def _sibling(target: str, kind: str) -> str:
    parent, base = os.path.split(target)
    return os.path.join(parent, f".{base}{kind}{os.getpid()}-{secrets.token_hex(4)}")


def mark_output_folder(folder: str, func: str) -> None:
    """Marks ``folder`` as written by kdmetrics (for commands that fill a folder in place)."""
    with open(os.path.join(folder, MARKER), "w") as f:
        f.write(f"written by kdmetrics {func}; safe for kdmetrics to replace\n")


def write_output_folder(
    func: str, target: str, write: Callable[[str], object], *, overwrite: bool = False
) -> list[str]:
    """Runs ``write(tmp_folder)`` and renames the folder to ``target``.

    ``target`` must come from :func:`check_output_folder`; it is checked again
    here because the work may have taken a while. Returns the file names written.
    """
    target = check_output_folder(func, target, overwrite=overwrite)
    remove_stale_temporaries(target)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = _sibling(target, _TMP)
    os.mkdir(tmp)  # mode 0o777 minus the umask, unlike mkdtemp's 0o700
    try:
        mark_output_folder(tmp, func)
        write(tmp)
        if os.path.lexists(target):
            # Empty folder, or one of ours (checked above): move it aside, put
            # the new one in place, then delete the old one.
            old = _sibling(target, _OLD)
            os.replace(target, old)
            os.replace(tmp, target)
            if is_kdmetrics_folder(old):
                shutil.rmtree(old, ignore_errors=True)
            else:  # an empty folder the user made
                os.rmdir(old)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sorted(n for n in os.listdir(target) if n != MARKER)


def write_documents(
    folder: str,
    *,
    tables: Mapping[str, Any],
    json_data: Any,
    markdown_text: str,
    summary_text: str,
) -> None:
    """The files every report-like command writes: one CSV per table (pandas
    DataFrames, written without their index), ``report.json`` (strict JSON:
    no NaN), ``report.md`` and ``summary.txt``."""
    for name, df in tables.items():
        df.to_csv(os.path.join(folder, f"{name}.csv"), index=False)
    with open(os.path.join(folder, "report.json"), "w") as f:
        json.dump(json_data, f, indent=2, allow_nan=False)
    with open(os.path.join(folder, "report.md"), "w") as f:
        f.write(markdown_text)
    with open(os.path.join(folder, "summary.txt"), "w") as f:
        f.write(summary_text + "\n")
