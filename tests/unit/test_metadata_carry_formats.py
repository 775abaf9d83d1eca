"""Metadata in WebP, JPEG and AVIF outputs (`metadata.carry.embedded_metadata`), read back by
the tools' own reader code (tests/tool_readers.py) and by facefix (`chunks_for_foreign_image`,
`parse_generation`, `info`): every real fixture, every lossy format."""

from __future__ import annotations

import json

import numpy as np
import pytest
from metadata_fixtures import METADATA_FIXTURES
from PIL import Image, ImageCms
from tool_readers import a1111_geninfo, comfyui_avif_metadata, comfyui_webp_workflow

from facefix_cli.io.encode import EncodeOptions, OutputPixels
from facefix_cli.io.outputs import OutputFormat
from facefix_cli.io.pngchunks import exif_chunk, iccp_chunk, text_chunk
from facefix_cli.metadata import (
    chunks_from_bytes,
    embedded_metadata,
    output_chunks,
    parse_generation,
)
from facefix_cli.metadata.containers.pngtext import TextReader
from facefix_cli.metadata.containers.xmp import read_texts
from facefix_cli.metadata.read import FACEFIX_KEY

LOSSY = [OutputFormat.WEBP, OutputFormat.JPEG, OutputFormat.AVIF]
RECORD = {"facefix_version": "0.1.0", "operations": [], "source": {"file": "a", "sha256": "0"}}
FIXTURES = sorted(
    p
    for p in METADATA_FIXTURES.iterdir()
    if p.suffix in (".png", ".jpg", ".jpeg", ".webp") and "animated" not in p.name
)
RGB = np.random.default_rng(3).random((24, 32, 3), dtype=np.float32)


def write(fmt: OutputFormat, chunks) -> bytes:
    return fmt.encode(OutputPixels(RGB, None, 8), embedded_metadata(chunks, fmt), EncodeOptions())


def texts(chunks) -> list[tuple[str, str]]:
    reader = TextReader()
    decoded = [reader.decode(chunk)[0] for chunk in chunks]
    return [(e.keyword, e.text) for e in decoded if e is not None]


@pytest.mark.parametrize("fmt", LOSSY)
@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.name)
def test_every_text_comes_back_and_reads_the_same(fixture, fmt):
    """What a PNG output would carry comes back from the lossy output, text for text, in order,
    and facefix reads the same generation from it."""
    source = chunks_from_bytes(fixture.read_bytes())
    png_chunks = output_chunks(source, [], RECORD)
    back = chunks_from_bytes(write(fmt, png_chunks))
    assert texts(back) == texts(png_chunks)
    as_png, as_fmt = parse_generation(png_chunks).to_dict(), parse_generation(back).to_dict()
    for record in (as_png, as_fmt):
        record.pop("sources", None)
    assert as_fmt == as_png
    assert parse_generation(back).facefix == [RECORD]


A1111 = sorted(p for p in FIXTURES if p.name.startswith(("a1111", "forge")))
COMFY = sorted(p for p in FIXTURES if p.name.startswith("comfy_") and p.suffix == ".png")


@pytest.mark.parametrize("fmt", LOSSY)
@pytest.mark.parametrize("fixture", A1111, ids=lambda p: p.name)
def test_a1111_reads_its_parameters_from_the_exif_user_comment(fixture, fmt):
    source = chunks_from_bytes(fixture.read_bytes())
    parameters = dict(texts(source))["parameters"]
    data = write(fmt, output_chunks(source, [], RECORD))
    assert a1111_geninfo(data) == parameters


@pytest.mark.parametrize("fixture", COMFY, ids=lambda p: p.name)
def test_comfyui_loads_the_graphs_from_webp_and_avif(fixture):
    source = dict(texts(chunks_from_bytes(fixture.read_bytes())))
    chunks = output_chunks(chunks_from_bytes(fixture.read_bytes()), [], RECORD)
    loaded = comfyui_webp_workflow(write(OutputFormat.WEBP, chunks))
    assert loaded["prompt"] == json.loads(source["prompt"])
    if "workflow" in source:
        assert loaded["workflow"] == json.loads(source["workflow"])
    avif = comfyui_avif_metadata(write(OutputFormat.AVIF, chunks))
    assert avif["prompt"] == json.loads(source["prompt"])
    if "workflow" in source:
        assert avif["workflow"] == json.loads(source["workflow"])


def big_workflow() -> dict:
    nodes = [{"id": i, "type": "Note", "widgets_values": ["ä" + "x" * 500]} for i in range(300)]
    return {"last_node_id": 300, "nodes": nodes}


def test_a_graph_too_big_for_a_jpeg_segment_stays_whole_in_extended_xmp():
    workflow = json.dumps(big_workflow())  # UTF-8 text, > 64 KB
    prompt = json.dumps({"1": {"class_type": "KSampler", "inputs": {"seed": 5}}})
    chunks = output_chunks(
        [text_chunk("prompt", prompt), text_chunk("workflow", workflow)], [], RECORD
    )
    data = write(OutputFormat.JPEG, chunks)
    back = chunks_from_bytes(data)
    assert texts(back) == texts(chunks)
    # and where it fits, WebP carries the non-ASCII graph in XMP alone, ComfyUI's prompt in EXIF
    webp = write(OutputFormat.WEBP, chunks)
    assert texts(chunks_from_bytes(webp)) == texts(chunks)
    assert comfyui_webp_workflow(webp)["prompt"] == json.loads(prompt)


def test_graphs_in_exif_are_not_stored_twice():
    prompt = json.dumps({"1": {"class_type": "KSampler", "inputs": {"seed": 5}}})
    meta = embedded_metadata(
        output_chunks([text_chunk("prompt", prompt)], [], RECORD), OutputFormat.WEBP
    )
    stored, problem = read_texts(meta.xmp or b"")
    assert problem is None and stored is not None
    assert ("prompt", None) in stored  # taken from EXIF Model when read
    assert dict(stored)[FACEFIX_KEY] == json.dumps(RECORD, sort_keys=True, separators=(",", ":"))


def test_icc_profile_is_kept_and_orientation_written_upright():
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112] = 6  # `io.read` turns the pixels and sets 1; a stale 6 must not survive
    exif[0x010F] = "Canon"
    chunks = output_chunks([iccp_chunk(profile), exif_chunk(exif.tobytes()[6:])], [], RECORD)
    for fmt in LOSSY:
        data = write(fmt, chunks)
        from io import BytesIO

        with Image.open(BytesIO(data)) as image:
            assert image.info.get("icc_profile") == profile
            tags = image.getexif()
            assert tags.get(0x0112, 1) == 1
            assert tags[0x010F] == "Canon"  # the input's own tags are kept


def test_info_reads_every_format(tmp_path):
    from facefix_cli import metadata

    fixture = METADATA_FIXTURES / "comfy_sdxl_base_refiner.png"
    chunks = output_chunks(chunks_from_bytes(fixture.read_bytes()), [], RECORD)
    paths = []
    for fmt in LOSSY:
        path = tmp_path / f"a{fmt.suffix}"
        path.write_bytes(write(fmt, chunks))
        paths.append(path)
    results = metadata.info(paths)
    assert [r.format for r in results] == ["WebP", "JPEG", "AVIF"]
    for result in results:
        assert result.error is None and result.record is not None
        assert result.record.tool == "ComfyUI"
        assert result.record.facefix == [RECORD]
