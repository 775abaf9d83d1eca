"""Every real-world metadata fixture through `facefix fix` (upscale only, a tiny random x2
model): the output reads back as its input did, in the PNG text chunks the tools themselves
read (ComfyUI's `prompt`/`workflow`, A1111's `parameters`/`postprocessing`, InvokeAI's
`sd-metadata`), and stealth info survives the resize."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from metadata_fixtures import FIELDS, IMAGES, METADATA_FIXTURES, a1111_reference
from PIL import Image

from facefix_cli.io.pngchunks import parse_chunks
from facefix_cli.metadata import chunks_from_bytes, find_stealth, info, parse_generation


@pytest.fixture(scope="module")
def fixed_fixtures(tmp_path_factory) -> dict[str, Path]:
    """Every metadata fixture copied and fixed once (upscale only, a tiny random x2 model):
    output path by input file name."""
    torch = pytest.importorskip("torch")
    from checkpoints import realesrgan_state_dict

    from facefix_cli import pipeline
    from facefix_cli.recipe import Recipe

    folder = tmp_path_factory.mktemp("fixtures")
    for path in IMAGES:
        shutil.copy(path, folder / path.name)
    upscaler = folder.parent / "tiny_x2.pth"
    torch.save(realesrgan_state_dict(2, num_block=1), upscaler)
    settings = pipeline.RunSettings(
        weights_dir=folder.parent / "weights",
        device="cpu",
        offline=True,
        extensions=("png", "jpg", "webp"),  # `jpg` brings `.jpeg` too (item 1)
    )
    summary = pipeline.fix([folder], Recipe(upscaler_path=upscaler), settings)
    outputs = {r.source.name: r.output for r in summary.results if r.status == "fixed"}
    failed = [(r.source.name, r.reason) for r in summary.results if r.status != "fixed"]
    assert not failed
    return outputs


def test_jpeg_extension_is_found_with_ext_jpg(fixed_fixtures):
    assert "a1111_usercomment.jpeg" in fixed_fixtures
    assert set(fixed_fixtures) == {p.name for p in IMAGES}


@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.name)
def test_fixed_output_reads_back_as_its_input(path: Path, fixed_fixtures):
    """The output carries the settings in PNG text chunks: for JPEG/WebP (ComfyUI's graph,
    A1111's UserComment, NovelAI's entries) and stealth inputs too, where the input's copy
    was in EXIF or in the pixels."""
    output = fixed_fixtures[path.name]
    before = parse_generation_of(path)
    after = parse_generation(chunks_from_bytes(output.read_bytes()))
    fields = list(FIELDS.values())
    assert [getattr(after, f) for f in fields] == [getattr(before, f) for f in fields]
    assert after.passes == before.passes
    assert len(after.facefix) == 1


def parse_generation_of(path: Path):
    (result,) = info([path])
    return result.record


def test_comfyui_graph_from_exif_is_written_where_comfyui_loads_it(fixed_fixtures):
    """ComfyUI's loader reads the `prompt` and `workflow` PNG text chunks (the web frontend
    reads tEXt chunks by keyword; Pillow's `Image.text` is what its Python side reads)."""
    for name, source in (
        ("comfy_flux_exif.webp", "comfy_flux-0.json"),
        ("comfy_sdxl_exif.jpg", "comfy_default_graph_sdxl1_0.json"),
    ):
        output = fixed_fixtures[name]
        graph = json.loads((METADATA_FIXTURES / "sources" / source).read_text())
        with Image.open(output) as image:
            assert json.loads(image.text["prompt"]) == graph
        prompt_chunks = [
            c for c in parse_chunks(output.read_bytes()) if c.data.startswith(b"prompt\x00")
        ]
        assert [c.type for c in prompt_chunks] == [b"tEXt"]


@pytest.mark.parametrize(
    ("name", "exif_source"),
    [
        ("comfyui_save_image_extended.jpeg", "enslo_comfyui_save_image_extended_jpeg.exif"),
        ("comfyui_save_image_extended_webp.webp", "enslo_comfyui_save_image_extended_webp.exif"),
        ("comfyui_saveimage_plus.jpg", "enslo_comfyui_saveimage_plus_jpg.exif"),
        ("comfyui_animated_webp.webp", "enslo_comfyui_animated_webp.exif"),
    ],
)
def test_saver_node_graphs_are_written_where_comfyui_loads_them(fixed_fixtures, name, exif_source):
    """Whichever EXIF layout the saver node used, the output has ComfyUI's own PNG chunks: tEXt
    `prompt` (an API graph) and `workflow` (a UI workflow), equal to the input's graphs, and
    the input's EXIF bytes unchanged in eXIf."""
    output = fixed_fixtures[name]
    with Image.open(output) as image:
        prompt, workflow = json.loads(image.text["prompt"]), json.loads(image.text["workflow"])
    assert all("class_type" in node for node in prompt.values())
    assert isinstance(workflow["nodes"], list) and workflow["nodes"]
    chunks = parse_chunks(output.read_bytes())
    by_keyword = {c.data.split(b"\x00", 1)[0]: c for c in chunks if c.type == b"tEXt"}
    assert {b"prompt", b"workflow"} <= set(by_keyword)
    exif = (METADATA_FIXTURES / "sources" / exif_source).read_bytes()
    assert [c.data for c in chunks if c.type == b"eXIf"] == [exif]
    source = parse_generation(chunks_from_bytes((METADATA_FIXTURES / name).read_bytes()))
    assert source.raw["prompt"] == image_text(output, "prompt")  # the graph's text, unchanged


def image_text(path: Path, keyword: str) -> str:
    with Image.open(path) as image:
        return image.text[keyword]


@pytest.mark.parametrize("stem", ["swarmui_comfy_graph", "swarmui_hires_comfy_graph"])
def test_swarmui_output_keeps_both_chunks_byte_for_byte(fixed_fixtures, stem):
    """SwarmUI reads its `parameters` JSON; ComfyUI (SwarmUI's backend) reads `prompt`: both
    stay the input's chunks, unchanged, and no A1111 extras line is added to the JSON."""
    source = parse_chunks((METADATA_FIXTURES / f"{stem}.png").read_bytes())
    output = parse_chunks(fixed_fixtures[f"{stem}.png"].read_bytes())
    texts = [c for c in source if c.type == b"tEXt"]
    assert [c for c in output if c.type == b"tEXt"] == texts
    with Image.open(fixed_fixtures[f"{stem}.png"]) as image:
        assert "sui_image_params" in json.loads(image.text["parameters"])
        assert "postprocessing" not in image.text
    assert parse_generation(output).tool == "SwarmUI"


@pytest.mark.parametrize(
    "name",
    [
        "comfyui_comfy_image_saver.jpeg",
        "comfyui_saveimagewithmetadata.webp",
        "swarmui_usercomment.jpg",
    ],
)
def test_user_comment_infotext_becomes_the_parameters_chunk(fixed_fixtures, name):
    """A UserComment with no graph is carried as `parameters`: what A1111 and SwarmUI read, and
    what ComfyUI's frontend imports from a PNG that has no graph."""
    before = parse_generation_of(METADATA_FIXTURES / name)
    with Image.open(fixed_fixtures[name]) as image:
        assert image.text["parameters"] == before.raw["EXIF UserComment"]


def test_stealth_info_is_carried_as_text_and_written_back_in_the_alpha(fixed_fixtures):
    source_text = (METADATA_FIXTURES / "sources" / "a1111_infotext_docstring.txt").read_text()
    for name, signature in (
        ("stealth_a1111_pnginfo.png", "stealth_pnginfo"),
        ("stealth_a1111_pngcomp.png", "stealth_pngcomp"),
    ):
        output = fixed_fixtures[name]
        with Image.open(output) as image:
            assert image.text["parameters"] == source_text
            assert "postprocessing" in image.text  # A1111's extras record for the upscale
            pixels = np.asarray(image.convert("RGBA"))
        assert pixels.shape[:2] == (192, 192)  # written again at the new size
        found, problem = find_stealth(None, pixels[:, :, 3])
        assert problem is None
        assert (found.signature, found.text) == (signature, source_text)
    with Image.open(fixed_fixtures["novelai_stealth_pngcomp.png"]) as image:
        assert image.text["Software"] == "NovelAI"
        assert json.loads(image.text["Comment"])["seed"] == 2253955223
        alpha = np.asarray(image.convert("RGBA"))[:, :, 3]
    found, _problem = find_stealth(None, alpha)
    assert json.loads(found.text)["Software"] == "NovelAI"


def test_sd_metadata_images_list_gets_the_post_processing(fixed_fixtures):
    with Image.open(fixed_fixtures["invokeai_sdmeta_v115_images_SYNTHETIC.png"]) as image:
        meta = json.loads(image.text["sd-metadata"])
    (entry,) = meta["images"]
    assert entry["postprocessing"][0] == "GFPGAN"  # what was there stays first
    assert entry["postprocessing"][1]["type"] == "esrgan"


def test_postprocessing_is_shown_beside_a_comfyui_graph(fixed_fixtures):
    record = parse_generation(
        chunks_from_bytes(fixed_fixtures["comfy_plus_a1111_parameters.png"].read_bytes())
    )
    assert record.tool == "ComfyUI"
    (entry,) = record.postprocessing
    assert entry["Postprocess upscale by"] == "2"


def test_postprocessing_line_parses_with_the_a1111_grammar(fixed_fixtures):
    with Image.open(fixed_fixtures["a1111_docstring.png"]) as image:
        parameters, postprocessing = image.text["parameters"], image.text["postprocessing"]
    assert (
        parameters == (METADATA_FIXTURES / "sources" / "a1111_infotext_docstring.txt").read_text()
    )
    settings = a1111_reference(postprocessing)
    assert settings["Postprocess upscale by"] == "2"
    assert settings["Postprocess upscaler"] == "tiny_x2"
