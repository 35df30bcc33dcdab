"""Ctrl-C stops a long paired bootstrap between chunks of resamples."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import kdmetrics as km
    rng = np.random.default_rng(0)
    n, k = 20_000, 50
    y = rng.integers(0, k, n)
    a = rng.integers(0, k, n)
    b = np.where(rng.random(n) < 0.8, y, a)
    total = 5_000_000  # minutes of work on any machine
    done = [0]
    def progress(d, t):
        if done[0] == 0:
            print("STARTED", flush=True)
        done[0] = d
    try:
        km.paired_bootstrap(y, a, b, metrics=("macro_f1",), n_resamples=total,
                            progress=progress)
    except KeyboardInterrupt:
        print("INTERRUPTED", done[0], total, flush=True)
        sys.exit(0)
    print("FINISHED", flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_stops_a_long_bootstrap_promptly():
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "STARTED", line + proc.stderr.read() if proc.stderr else line
        time.sleep(1.0)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        waited = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    word, done, total = out.split()
    assert word == "INTERRUPTED"
    # The whole run would take minutes; it stopped after a small fraction,
    # and control came back within seconds (about one 0.1 s chunk, plus a
    # generous margin for a loaded machine), not at the end of the run.
    assert int(done) < int(total) // 20
    assert waited < 10.0
