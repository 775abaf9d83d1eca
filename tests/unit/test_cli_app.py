"""The `facefix` script's entry (`facefix_cli.cli.main`): exit codes and the --json record on
command lines the option parser refuses."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from facefix_cli.cli import main


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def test_a_refused_fix_command_line_with_json_still_prints_one_summary_record(capsys, tmp_path):
    code, out, err = run_main(capsys, "fix", str(tmp_path), "--upscale", "9", "--json")
    assert code == 2
    # one line on stderr, as every facefix error, naming the help to read
    assert err.splitlines() == [
        "error: Invalid value for '--upscale' / '-U': '9' is not one of '1', '2', '4'. "
        "(see facefix fix --help)"
    ]
    record = json.loads(out)
    assert record["exit_code"] == 2 and "--upscale" in record["error"]
    assert record["processed"] == 0 and record["failed"] == 0 and record["files"] == []
    assert record["report"] is None


def test_other_commands_get_the_error_record_and_no_json_means_no_stdout(capsys):
    code, out, _err = run_main(capsys, "info", "--no-such-option", "--json")
    assert code == 2
    assert json.loads(out) == {"exit_code": 2, "error": "No such option: --no-such-option"}
    code, out, _err = run_main(capsys, "info", "fix", "--no-such-option", "--json")
    assert code == 2 and "processed" not in json.loads(out)  # a file named fix is not `fix`
    code, out, err = run_main(capsys, "fix", "--upscale", "9")
    assert code == 2 and out == "" and err.startswith("error: ") and len(err.splitlines()) == 1


def test_successful_exits_keep_their_codes(capsys):
    code, out, _err = run_main(capsys, "--version")
    assert code == 0 and out.startswith("facefix ")
    code, out, _err = run_main(capsys, "--help")
    assert code == 0 and "fix" in out
    code, short, _err = run_main(capsys, "fix", "-h")  # -h is --help, as people type it
    assert code == 0 and "--upscale" in short


def test_python_dash_m_runs_the_same_entry(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "facefix_cli", "fix", str(tmp_path), "--bogus", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert json.loads(done.stdout)["error"].startswith("No such option: --bogus")


def test_the_cli_and_the_summary_types_load_without_torch():
    """A refused command line answers in well under a second: nothing on its path imports torch
    or spandrel (seconds), OpenCV or numpy; `facefix_cli.pipeline` resolves its names on first use."""
    code = (
        "import sys, facefix_cli.cli, facefix_cli.pipeline.results\n"
        "from facefix_cli.pipeline import FixSummary\n"
        "print(sorted(m for m in ('torch', 'spandrel', 'cv2', 'numpy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_every_pipeline_name_resolves():
    import facefix_cli.pipeline as pipeline

    assert sorted(pipeline.__all__) == sorted(pipeline._EXPORTS)
    for name in pipeline.__all__:
        assert getattr(pipeline, name) is not None
    with pytest.raises(AttributeError):
        _ = pipeline.no_such_name
