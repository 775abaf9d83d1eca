"""`facefix download`, `--check` and `facefix models` against a real HTTP server."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from facefix_cli.cli import app
from facefix_cli.cli.app import AppContext
from facefix_cli.weights.registry import ModelInfo, Registry
from tests.weights_server import (
    DEAD_TIMEOUT,
    leftovers,
    payload,
    stand_in,
    stand_ins,
)


@pytest.fixture
def cli_registry(server):
    """A registry of stand-ins, served by `server`: two default models and a non-commercial
    one. The CLI gets it through its context object (`cli` below)."""
    rows = []
    for index, name in enumerate(["alpha", "beta", "nc"]):
        data = payload(10 + index)
        extra = {}
        if name == "nc":
            extra = {"default": False, "non_commercial": True, "licence": "NC-1.0 (non-commercial)"}
        model = stand_in(name, data, server.url("missing", f"{name}.pth"), **extra)
        server.add(model, data)
        rows.append((model, data))
    return rows


runner = CliRunner()


def cli(rows: list[tuple[ModelInfo, bytes]], args: list[str]):
    """Run the command line against a registry of `rows`."""
    context = AppContext(registry=Registry(tuple(model for model, _ in rows)))
    # Served from this machine: not offline (the suite sets FACEFIX_OFFLINE=1 for all else).
    return runner.invoke(app, args, obj=context, env={"FACEFIX_OFFLINE": ""})


def test_cli_download_default_set_through_a_mirror(server, cli_registry, tmp_path):
    result = cli(
        cli_registry,
        [
            "download",
            "--weights-dir",
            str(tmp_path),
            "--mirror",
            f"{server.base}/ok",
            "--retries",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 model files ready in" in result.stdout
    for model, data in cli_registry[:2]:
        assert (tmp_path / model.file).read_bytes() == data
        assert f"downloading {model.file}" in result.stderr
    assert not (tmp_path / "nc.pth").exists()
    assert "\x1b" not in result.output and "\r" not in result.output


def test_cli_download_named_non_commercial_model_prints_its_licence(server, cli_registry, tmp_path):
    result = cli(
        cli_registry,
        ["download", "nc", "--weights-dir", str(tmp_path), "--mirror", f"{server.base}/ok"],
    )
    assert result.exit_code == 0, result.output
    assert "non-commercial" in result.stderr and "commercial purposes" in result.stderr
    assert (tmp_path / "nc.pth").exists()

    result = cli(
        cli_registry,
        ["download", "--all", "--weights-dir", str(tmp_path), "--mirror", f"{server.base}/ok"],
    )
    assert result.exit_code == 0, result.output
    assert "skipped nc: non-commercial licence" in result.stderr


def test_cli_download_errors_and_exit_codes(server, cli_registry, tmp_path):
    failed = cli(
        cli_registry, ["download", "alpha", "--weights-dir", str(tmp_path), "--retries", "0"]
    )
    assert failed.exit_code == 1
    assert failed.stderr.startswith("error: could not download alpha.pth")
    assert "HTTP 404" in failed.stderr

    unknown = cli(cli_registry, ["download", "zeta", "--weights-dir", str(tmp_path)])
    assert unknown.exit_code == 2
    assert "error: unknown model zeta; known models: alpha, beta, nc" in unknown.stderr


def test_cli_check_good_missing_and_corrupt(cli_registry, tmp_path):
    (alpha, alpha_data), (beta, beta_data), _ = cli_registry
    (tmp_path / alpha.file).write_bytes(alpha_data)
    (tmp_path / beta.file).write_bytes(beta_data)
    args = ["download", "--check", "--weights-dir", str(tmp_path)]

    good = cli(cli_registry, args)
    assert good.exit_code == 0, good.output
    assert "verified  alpha" in good.stdout and "verified  beta" in good.stdout

    (tmp_path / beta.file).unlink()
    missing = cli(cli_registry, args)
    assert missing.exit_code == 1
    assert "missing   beta" in missing.stdout
    assert f"facefix download beta --weights-dir {tmp_path}" in missing.stderr

    (tmp_path / beta.file).write_bytes(beta_data[::-1])  # right size, wrong digest
    corrupt = cli(cli_registry, args)
    assert corrupt.exit_code == 1
    assert "corrupt   beta" in corrupt.stdout and "SHA-256" in corrupt.stdout
    assert "--force" in corrupt.stderr
    # --check never downloads, and --check with --force is a usage error.
    assert (tmp_path / beta.file).read_bytes() == beta_data[::-1]
    assert cli(cli_registry, [*args, "--force"]).exit_code == 2


def test_cli_models_table_and_json(cli_registry, tmp_path):
    (alpha, alpha_data), (beta, beta_data), _ = cli_registry
    (tmp_path / alpha.file).write_bytes(alpha_data)
    (tmp_path / beta.file).write_bytes(beta_data[::-1])

    table = cli(cli_registry, ["models", "--weights-dir", str(tmp_path)])
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[1].split() == ["NAME", "FILE", "SIZE", "LICENCE", "STATE"]
    assert lines[2].split()[:3] == ["alpha", "alpha.pth", "48.0"]
    assert lines[2].endswith("present") and lines[3].endswith("present")
    assert lines[4].endswith("missing") and "(by name only)" in lines[4]

    verified = cli(cli_registry, ["models", "--weights-dir", str(tmp_path), "--verify", "--json"])
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.stdout)
    assert report["weights_dir"] == str(tmp_path)
    states = {row["name"]: row["state"] for row in report["models"]}
    assert states == {"alpha": "verified", "beta": "corrupt", "nc": "missing"}
    assert report["models"][0]["sha256"] == alpha.sha256
    assert report["models"][0]["size"] == alpha.size


def test_cli_download_gives_up_within_two_timeouts_per_source(other_server, refusing_url, tmp_path):
    """Every source dead: a stalled mirror and a refusing release host, four files."""
    rows = stand_ins(4, refusing_url, size=4000)
    for model, data in rows:
        other_server.add(model, data)
    started = time.monotonic()

    result = cli(
        rows,
        [
            "download",
            "--weights-dir",
            str(tmp_path),
            "--mirror",
            f"{other_server.base}/stall",
            "--timeout",
            str(DEAD_TIMEOUT),
            "--retries",
            "3",
        ],
    )

    assert result.exit_code == 1
    assert len(other_server.requests) == 1
    error = result.stderr.splitlines()[-1]
    for model, _ in rows:
        assert f"could not download {model.file}" in error
    # One attempt per source in the whole run; the other three files skip both.
    assert error.count("(not tried again in this run)") == 2
    assert error.count("not tried, ") == 6
    assert time.monotonic() - started < 2 * DEAD_TIMEOUT * 2 + 2
    assert leftovers(tmp_path) == []


def test_cli_download_honours_offline(server, cli_registry, tmp_path):
    """Issue #30: `FACEFIX_OFFLINE=1 facefix download` went to the network anyway."""
    context = AppContext(registry=Registry(tuple(model for model, _ in cli_registry)))
    args = ["download", "--weights-dir", str(tmp_path), "--mirror", f"{server.base}/ok"]
    refused = runner.invoke(app, args, obj=context, env={"FACEFIX_OFFLINE": "1"})
    assert refused.exit_code == 2 and "offline" in refused.stderr
    assert "facefix models --find DIR" in refused.stderr
    assert server.requests == [] and list(tmp_path.iterdir()) == []
    folder = tmp_path / "mirror"
    folder.mkdir()
    for model, data in cli_registry[:2]:
        (folder / model.file).write_bytes(data)
    weights = tmp_path / "w"
    copied = runner.invoke(
        app, ["download", "--weights-dir", str(weights), "--mirror", str(folder), "--offline"],
        obj=context,
    )  # fmt: skip
    assert copied.exit_code == 0, copied.output
    assert server.requests == [] and not list(weights.glob("*.lock"))
