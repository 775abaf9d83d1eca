"""weights.transfer against a real HTTP server: streaming, verifying, resuming, retrying,
redirects, refusals, mirrors and proxies (tests/weights_server.py)."""

from __future__ import annotations

import time

import pytest

from facefix_cli.errors import DownloadError, SetupError
from facefix_cli.weights import download as dl
from facefix_cli.weights import store
from tests.weights_server import (
    CUT_AT,
    FAST,
    SIZE,
    TIMEOUT,
    RecordingProgress,
    leftovers,
    payload,
    stand_in,
    with_url,
)


def test_download_streams_verifies_and_renames_into_place(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("ok", model))
    weights = tmp_path / "nested" / "weights"
    progress = RecordingProgress()

    paths = dl.download([model], weights, progress=progress, **FAST)

    assert paths == [weights / model.file]
    assert paths[0].read_bytes() == data
    assert leftovers(weights) == [model.file]  # no .part left behind
    assert progress.starts == [(model.name, SIZE, 0, server.url("ok", model))]
    assert progress.advanced == SIZE
    assert progress.finished == paths
    assert server.hits(model.file)[0].range is None


def test_present_file_is_trusted_not_rehashed_and_force_refetches(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("ok", model))
    target = tmp_path / model.file
    target.write_bytes(payload(5))  # right size, wrong bytes

    assert dl.download([model], tmp_path, **FAST) == [target]
    assert server.requests == []  # trusted by size: no request, no hash
    assert target.read_bytes() != data
    assert [s.state for s in store.check([model], tmp_path)] == ["corrupt"]

    dl.download([model], tmp_path, force=True, **FAST)
    assert target.read_bytes() == data
    assert len(server.requests) == 1


def test_wrong_sized_file_is_not_present_and_is_replaced(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("ok", model))
    (tmp_path / model.file).write_bytes(data[:100])
    assert not store.is_present(model, tmp_path)
    dl.download([model], tmp_path, **FAST)
    assert (tmp_path / model.file).read_bytes() == data


def test_cut_off_transfer_is_resumed_with_a_range_request(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("cut", model))
    progress = RecordingProgress()

    dl.download([model], tmp_path, progress=progress, **FAST)

    assert (tmp_path / model.file).read_bytes() == data
    assert [r.range for r in server.hits(model.file)] == [None, f"bytes={CUT_AT}-"]
    assert [s[2] for s in progress.starts] == [0, CUT_AT]
    assert any("connection closed after 20000 of 48000 bytes" in m for m in progress.messages)


def test_interrupted_download_never_appears_under_final_name_and_resumes_next_run(
    server, one, tmp_path
):
    model, data = one
    cut = with_url(model, server.url("cut", model))
    with pytest.raises(DownloadError, match="connection closed after 20000"):
        dl.download([cut], tmp_path, timeout=TIMEOUT, retries=0)
    assert not (tmp_path / model.file).exists()
    assert (tmp_path / (model.file + ".part")).stat().st_size == CUT_AT

    dl.download([with_url(model, server.url("ok", model))], tmp_path, **FAST)
    assert (tmp_path / model.file).read_bytes() == data
    assert server.hits(model.file)[-1].range == f"bytes={CUT_AT}-"
    assert leftovers(tmp_path) == [model.file]


def test_connection_stalled_mid_body_times_out_and_resumes(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("stallbody", model))
    progress = RecordingProgress()
    started = time.monotonic()

    dl.download([model], tmp_path, progress=progress, **FAST)

    assert time.monotonic() - started < 5
    assert (tmp_path / model.file).read_bytes() == data
    assert [r.range for r in server.hits(model.file)] == [None, f"bytes={CUT_AT}-"]
    assert any("stalled" in m for m in progress.messages)


def test_server_without_range_support_starts_over(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("norange", model))
    # A partial file with the wrong bytes: only a real restart from zero gives a good file.
    (tmp_path / (model.file + ".part")).write_bytes(b"x" * CUT_AT)
    progress = RecordingProgress()

    dl.download([model], tmp_path, progress=progress, **FAST)

    assert (tmp_path / model.file).read_bytes() == data
    assert [r.range for r in server.hits(model.file)] == [f"bytes={CUT_AT}-"]
    assert any("does not support resuming" in m for m in progress.messages)
    assert progress.starts[-1][2] == 0


def test_resume_onto_bad_partial_bytes_discards_them_and_refetches(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("ok", model))
    (tmp_path / (model.file + ".part")).write_bytes(b"x" * CUT_AT)

    dl.download([model], tmp_path, **FAST)

    assert (tmp_path / model.file).read_bytes() == data
    assert [r.range for r in server.hits(model.file)] == [f"bytes={CUT_AT}-", None]


def test_redirect_is_followed_and_keeps_the_range_header(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("redirect", model))
    (tmp_path / (model.file + ".part")).write_bytes(data[:CUT_AT])
    dl.download([model], tmp_path, **FAST)
    assert (tmp_path / model.file).read_bytes() == data
    assert [(r.path, r.range) for r in server.requests] == [
        (f"/redirect/{model.file}", f"bytes={CUT_AT}-"),
        (f"/ok/{model.file}", f"bytes={CUT_AT}-"),
    ]


def test_complete_part_from_a_crashed_run_is_installed_without_the_network(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("ok", model))
    (tmp_path / (model.file + ".part")).write_bytes(data)
    dl.download([model], tmp_path, **FAST)
    assert (tmp_path / model.file).read_bytes() == data
    assert server.requests == []


def test_404_fails_clearly_without_retrying(server, one, tmp_path):
    model, _ = one
    url = server.url("missing", model)
    with pytest.raises(DownloadError) as caught:
        dl.download([with_url(model, url)], tmp_path, **FAST)
    assert f"could not download {model.file}: {url}: HTTP 404" in str(caught.value)
    assert caught.value.files == [model.file]
    assert len(server.requests) == 1
    assert leftovers(tmp_path) == []


def test_500_is_retried_then_succeeds(server, one, tmp_path):
    model, data = one
    progress = RecordingProgress()
    dl.download([with_url(model, server.url("flaky", model))], tmp_path, progress=progress, **FAST)
    assert (tmp_path / model.file).read_bytes() == data
    assert len(server.requests) == 2
    assert any("HTTP 500" in m and "retry 1 of 2" in m for m in progress.messages)


def test_retries_are_bounded(server, one, tmp_path):
    model, _ = one
    with pytest.raises(DownloadError, match=r"HTTP 500 .*gave up after 3 attempts"):
        dl.download([with_url(model, server.url("error500", model))], tmp_path, **FAST)
    assert len(server.requests) == 3
    assert leftovers(tmp_path) == []


def test_stalled_server_times_out_and_is_not_retried(server, one, tmp_path):
    """Accepts the connection, never answers: one timeout, no retry (it is dead for the run)."""
    model, _ = one
    started = time.monotonic()
    with pytest.raises(DownloadError, match="timed out .*not tried again in this run"):
        dl.download(
            [with_url(model, server.url("stall", model))],
            tmp_path,
            timeout=TIMEOUT,
            retries=1,
            backoff=0.01,
        )
    assert time.monotonic() - started < 2 * TIMEOUT + 1
    assert len(server.requests) == 1
    assert leftovers(tmp_path) == []


def test_wrong_digest_is_rejected_and_nothing_is_kept(server, one, tmp_path):
    model, _ = one
    with pytest.raises(DownloadError, match="SHA-256 mismatch"):
        dl.download([with_url(model, server.url("wrong", model))], tmp_path, **FAST)
    assert leftovers(tmp_path) == []
    assert len(server.requests) == 1  # wrong bytes are not worth retrying from the same place


@pytest.mark.parametrize(
    ("behaviour", "message"),
    [("bigdeclared", "more than the expected"), ("bigstream", "larger than the expected")],
)
def test_oversized_body_is_refused(server, one, tmp_path, behaviour, message):
    model, _ = one
    with pytest.raises(DownloadError, match=message):
        dl.download([with_url(model, server.url(behaviour, model))], tmp_path, **FAST)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("behaviour", ["html", "htmlbody"])
def test_html_page_with_status_200_is_refused(server, one, tmp_path, behaviour):
    model, _ = one
    with pytest.raises(DownloadError, match="HTML page"):
        dl.download([with_url(model, server.url(behaviour, model))], tmp_path, **FAST)
    assert leftovers(tmp_path) == []


def test_one_failed_model_does_not_stop_the_others(server, one, tmp_path):
    model, data = one
    good = with_url(model, server.url("ok", model))
    bad = stand_in("absent", b"never served", server.url("missing", "absent.pth"))
    with pytest.raises(DownloadError) as caught:
        dl.download([bad, good], tmp_path, **FAST)
    assert caught.value.files == [bad.file]
    assert (tmp_path / good.file).read_bytes() == data


def test_mirrors_are_tried_in_order_before_the_release_url(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("ok", model))
    mirrors = [f"{server.base}/missing", f"{server.base}/ok/"]
    progress = RecordingProgress()

    dl.download([model], tmp_path, mirrors=mirrors, progress=progress, **FAST)

    assert (tmp_path / model.file).read_bytes() == data
    assert [r.path for r in server.requests] == [f"/missing/{model.file}", f"/ok/{model.file}"]
    assert progress.starts[0][3] == f"{server.base}/ok/{model.file}"


def test_release_url_is_the_fallback_when_mirrors_fail(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("flaky", model))
    dl.download([model], tmp_path, mirrors=[f"{server.base}/error500"], **FAST)
    assert (tmp_path / model.file).read_bytes() == data
    paths = [r.path for r in server.requests]
    assert paths[:3] == [f"/error500/{model.file}"] * 3  # retried, then given up
    assert paths[3:] == [f"/flaky/{model.file}"] * 2


@pytest.mark.parametrize("form", ["folder", "file-url"])
def test_local_folder_mirror(server, one, tmp_path, form):
    model, data = one
    model = with_url(model, server.url("missing", model))
    mirror_dir = tmp_path / "mirror"
    mirror_dir.mkdir()
    (mirror_dir / model.file).write_bytes(data)
    mirror = str(mirror_dir) if form == "folder" else mirror_dir.as_uri()

    dl.download([model], tmp_path / "weights", mirrors=[mirror], **FAST)

    assert (tmp_path / "weights" / model.file).read_bytes() == data
    assert server.requests == []


def test_bad_file_in_local_mirror_falls_back_to_the_release_url(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("ok", model))
    mirror_dir = tmp_path / "mirror"
    mirror_dir.mkdir()
    (mirror_dir / model.file).write_bytes(payload(7))  # right size, wrong bytes
    progress = RecordingProgress()

    dl.download([model], tmp_path / "weights", mirrors=[str(mirror_dir)], progress=progress, **FAST)

    assert (tmp_path / "weights" / model.file).read_bytes() == data
    assert any("SHA-256 mismatch" in m for m in progress.messages)
    assert len(server.requests) == 1


def test_mirror_folder_that_does_not_exist_is_a_setup_error(tmp_path, one):
    model, _ = one
    with pytest.raises(SetupError, match="mirror folder not found"):
        dl.download([model], tmp_path, mirrors=[str(tmp_path / "nope")])
    with pytest.raises(SetupError, match="unsupported mirror"):
        dl.download([model], tmp_path, mirrors=["ftp://example.org/weights"])


def test_http_proxy_from_the_environment_is_used(server, one, tmp_path, monkeypatch):
    model, data = one
    # The host does not exist: only a proxy can answer for it.
    model = with_url(model, f"http://weights.facefix.invalid/ok/{model.file}")
    monkeypatch.setenv("HTTP_PROXY", server.base)
    dl.download([model], tmp_path, **FAST)
    assert (tmp_path / model.file).read_bytes() == data
    assert [r.proxied for r in server.requests] == [True]
