"""The command line's contract: bad input -> one line on stderr and exit 2;
an internal bug -> the traceback and exit 1; --help shows the defaults, and
the defaults equal the Python API's."""

from __future__ import annotations

import argparse
import inspect
import subprocess
import sys

import pytest

from kdmetrics import cli
from kdmetrics.cli import UsageError, build_parser, main
from kdmetrics.errors import KdMetricsError, ShapeError


def _sub(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def _defaults(name: str) -> dict[str, object]:
    return {
        a.dest: a.default
        for a in _sub(build_parser(), name)._actions
        if a.dest not in ("help", "_module")
    }


def _signature_defaults(fn) -> dict[str, object]:
    return {
        k: p.default
        for k, p in inspect.signature(fn).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def test_usage_error_is_a_kdmetrics_error_and_a_value_error():
    assert issubclass(UsageError, KdMetricsError)
    assert issubclass(UsageError, ValueError)


def test_output_folder_error_is_a_kdmetrics_error():
    from kdmetrics.io.output import OutputFolderError

    assert issubclass(OutputFolderError, KdMetricsError)


def test_missing_file_is_one_line_and_exit_2(tmp_path, capsys):
    missing = tmp_path / "nope.npz"
    assert main(["summary", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kdmetrics summary: error: ")
    assert str(missing) in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def _patched_summary(monkeypatch, exc: BaseException) -> None:
    import kdmetrics.cli.summary as summary_cli

    def run(args):
        raise exc

    monkeypatch.setattr(summary_cli, "run", run)


@pytest.mark.parametrize(
    "exc",
    [
        ShapeError("summary: logits must be 2-D"),
        UsageError("--ci must be in (0, 1), got 2.0"),
        PermissionError(13, "Permission denied", "/x/y.npz"),
    ],
)
def test_bad_input_errors_exit_2_without_traceback(monkeypatch, capsys, exc):
    _patched_summary(monkeypatch, exc)
    assert main(["summary", "whatever.npz"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kdmetrics summary: error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize("exc", [RuntimeError("internal bug"), ValueError("plain bug")])
def test_internal_bug_propagates(monkeypatch, exc):
    """main() lets a bug through (a plain ValueError too: the library's own
    refusals are KdMetricsError); `python -m kdmetrics` then prints its traceback."""
    _patched_summary(monkeypatch, exc)
    with pytest.raises(type(exc), match=str(exc)):
        main(["summary", "whatever.npz"])


def test_internal_bug_exits_1_with_traceback(tmp_path):
    code = (
        "import sys, types\n"
        "import kdmetrics.cli as cli\n"
        "import kdmetrics.cli.summary as s\n"
        "def run(args):\n"
        "    raise RuntimeError('internal bug here')\n"
        "s.run = run\n"
        "sys.exit(cli.main(['summary', 'x.npz']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "Traceback" in out.stderr
    assert "RuntimeError: internal bug here" in out.stderr


def test_missing_file_exit_2_in_a_process(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "kdmetrics", "summary", str(tmp_path / "missing.npz")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert out.stderr.startswith("kdmetrics summary: error: ")
    assert out.stderr.count("\n") == 1


@pytest.mark.parametrize("name", sorted(cli.SUBCOMMANDS))
def test_help_shows_defaults(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    sub = _sub(build_parser(), name)
    for action in sub._actions:
        if not action.option_strings or action.help in (None, argparse.SUPPRESS):
            continue
        if action.default in (None, False, [], argparse.SUPPRESS) or action.dest == "help":
            continue
        shown = " ".join(str(action.default).split())
        assert f"(default: {shown})" in text, (name, action.dest)


def test_one_spelling_per_option():
    """An option present in several subcommands has one meaning: tier sizes
    are two integers everywhere, progress is silenced by --quiet."""
    parser = build_parser()
    for name in cli.SUBCOMMANDS:
        for a in _sub(parser, name)._actions:
            if "--tier-sizes" in a.option_strings:
                assert a.nargs == 2 and a.type is int, name
                assert tuple(a.default) == (20, 40), name
            if "--no-progress" in a.option_strings:  # former spelling: hidden alias
                assert a.help == argparse.SUPPRESS and a.dest == "quiet", name
    for name in ("report", "compare", "train", "demo"):
        assert "quiet" in _defaults(name), name


def test_tier_sizes_parse_as_two_integers():
    args = build_parser().parse_args(["summary", "f.npz", "--tier-sizes", "3", "4"])
    assert tuple(args.tier_sizes) == (3, 4)


def test_summary_defaults_equal_the_api():
    from kdmetrics.metrics.summary import summary
    from kdmetrics.tiers import tiers_from_counts

    d = _defaults("summary")
    assert d["temperature"] == _signature_defaults(summary)["temperature"]
    assert tuple(d["tier_sizes"]) == tuple(_signature_defaults(tiers_from_counts)["sizes"])


def test_report_defaults_equal_the_api():
    from kdmetrics.report.build import build_report, load_inputs

    d, api = _defaults("report"), _signature_defaults(build_report)
    for key in ("n_resamples", "seed", "ci"):
        assert d[key] == api[key], key
    assert tuple(d["tier_sizes"]) == tuple(_signature_defaults(load_inputs)["tier_sizes"])


def test_compare_defaults_equal_the_api():
    from kdmetrics.comparison.engine import compare
    from kdmetrics.tiers import tiers_from_counts

    d, api = _defaults("compare"), _signature_defaults(compare)
    for key in ("n_resamples", "seed", "ci"):
        assert d[key] == api[key], key
    assert tuple(d["tier_sizes"]) == tuple(_signature_defaults(tiers_from_counts)["sizes"])


def test_train_defaults_equal_the_api():
    from kdmetrics.kd.config import config_default

    d = _defaults("train")
    for key in ("loss", "seed", "T", "alpha", "epochs", "batch_size", "lr", "select_metric"):
        assert d[key] == config_default(key), key
    assert tuple(d["tier_sizes"]) == tuple(config_default("tier_sizes"))


def test_demo_defaults_equal_the_api():
    from kdmetrics.demo import DemoConfig

    d = _defaults("demo")
    fields = DemoConfig.__dataclass_fields__
    shared = [k for k in d if k in fields]
    assert {"seed", "n_resamples", "T", "alpha", "epochs"} <= set(shared)
    for key in shared:
        want = fields[key].default
        got = tuple(d[key]) if isinstance(want, tuple) else d[key]
        assert got == want, key
