"""The tools' own metadata readers, ported to Python, so tests check an output the way each tool
reads it (not the way facefix thinks it should be read). Each port keeps the original's logic,
quirks included (ComfyUI's WebP reader steps over RIFF chunks without their padding byte, and
reads only IFD0's ASCII entries), and names its source:

- A1111 `read_info_from_image`: AUTOMATIC1111/stable-diffusion-webui, modules/images.py,
  commit 08c3caec1eb2b1aaebf045e691c7465d4161476c (Forge and SD.Next keep the same function).
  It uses piexif, as A1111 does; the NovelAI branch (which needs A1111's sampler table and reads
  PNG text only) is left out.
- ComfyUI frontend `getWebpMetadata` + `parseExifData`: Comfy-Org/ComfyUI_frontend,
  src/scripts/pnginfo.ts, commit b4cfb80d67b5c0f67f309a84be991c042265cab0; and the frontend's
  WebP file handler that turns its result into a graph (`handleWebpFile`: `workflow ||
  Workflow`, `prompt || Prompt`, then JSON.parse).
- ComfyUI frontend `parseAvifMetadata`: src/scripts/metadata/avif.ts, commit
  0edf55b759a00dd99045a31a66441633738cf5b9.
ComfyUI's frontend has no JPEG reader (its file handlers cover PNG, WebP, SVG, AVIF and media).
"""

from __future__ import annotations

import contextlib
import io
import json
import struct
from typing import Any

import piexif
import piexif.helper
from PIL import Image


def a1111_read_info_from_image(image: Image.Image) -> tuple[str | None, dict]:
    items = dict(image.info or {})
    geninfo = items.pop("parameters", None)
    if "exif" in items:
        exif = piexif.load(items["exif"])
        exif_comment = (exif or {}).get("Exif", {}).get(piexif.ExifIFD.UserComment, b"")
        try:
            exif_comment = piexif.helper.UserComment.load(exif_comment)
        except ValueError:
            exif_comment = exif_comment.decode("utf8", errors="ignore")
        if exif_comment:
            items["exif comment"] = exif_comment
            geninfo = exif_comment
        for field in ["jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi", "exif"]:
            items.pop(field, None)
        for field in ["loop", "background", "timestamp", "duration"]:
            items.pop(field, None)
    return geninfo, items


def a1111_geninfo(data: bytes) -> str | None:
    with Image.open(io.BytesIO(data)) as image:
        return a1111_read_info_from_image(image)[0]


def _comfy_parse_exif_data(exif: bytes) -> dict[int, Any]:
    little = exif[:2] == b"II"
    order = "<" if little else ">"

    def read_int(offset: int, length: int) -> int:
        return struct.unpack(order + ("H" if length == 2 else "I"), exif[offset : offset + length])[
            0
        ]

    ifd_offset = read_int(4, 4)
    result: dict[int, Any] = {}
    for i in range(read_int(ifd_offset, 2)):
        entry = ifd_offset + 2 + i * 12
        tag = read_int(entry, 2)
        kind = read_int(entry + 2, 2)
        count = read_int(entry + 4, 4)
        value_offset = read_int(entry + 8, 4)
        value = None
        if kind == 2:  # TextDecoder('utf-8') replaces bad bytes
            value = exif[value_offset : value_offset + count - 1].decode("utf-8", "replace")
        result[tag] = value
    return result


def comfyui_webp_metadata(webp: bytes) -> dict[str, str]:
    """`getWebpMetadata`: the `key:value` strings of IFD0, keyed by what precedes the colon."""
    if webp[:4] != b"RIFF" or webp[8:12] != b"WEBP":
        return {}
    offset = 12
    txt_chunks: dict[str, str] = {}
    while offset < len(webp):
        (chunk_length,) = struct.unpack("<I", webp[offset + 4 : offset + 8])
        chunk_type = webp[offset : offset + 4]
        if chunk_type == b"EXIF":
            if webp[offset + 8 : offset + 14] == b"Exif\x00\x00":
                offset += 6
            data = _comfy_parse_exif_data(webp[offset + 8 : offset + 8 + chunk_length])
            for value in data.values():
                if isinstance(value, str):
                    index = value.find(":")
                    # JS slice(0, -1) when there is no colon: all but the last character
                    key = value[:index] if index >= 0 else value[:-1]
                    txt_chunks[key] = value[index + 1 :]
            break
        offset += 8 + chunk_length  # no padding byte: the quirk facefix's WebPs allow for
    return txt_chunks


def comfyui_webp_workflow(webp: bytes) -> dict[str, Any]:
    """`handleWebpFile`: the workflow and prompt ComfyUI loads from a WebP."""
    info = comfyui_webp_metadata(webp)
    workflow = info.get("workflow") or info.get("Workflow")
    prompt = info.get("prompt") or info.get("Prompt")
    return {
        "workflow": json.loads(workflow) if workflow else None,
        "prompt": json.loads(prompt) if prompt else None,
    }


def _find_box(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    offset = start
    while offset < end:
        if offset + 8 > end:
            break
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        if length == 0:
            break
        if data[offset + 4 : offset + 8] == kind:
            return offset + 8, offset + length
        if offset + length > end:
            break
        offset += length
    return None


def _read_cstring(data: bytes, start: int) -> tuple[str, int]:
    end = data.index(b"\x00", start) if b"\x00" in data[start:] else len(data)
    return data[start:end].decode("utf-8", "replace"), end - start + 1


def comfyui_avif_metadata(data: bytes) -> dict[str, Any]:
    """`parseAvifMetadata`: the prompt and workflow of an AVIF's Exif item."""
    if data[4:8] != b"ftyp" or data[8:12] != b"avif":
        return {}
    meta = _find_box(data, 0, len(data), b"meta")
    if meta is None:
        return {}
    content = meta[0] + 4
    iinf = _find_box(data, content, meta[1], b"iinf")
    assert iinf is not None, "iinf box not found"
    version = data[iinf[0]]
    offset = iinf[0] + 4
    if version == 0:
        (count,) = struct.unpack(">H", data[offset : offset + 2])
        offset += 2
    else:
        (count,) = struct.unpack(">I", data[offset : offset + 4])
        offset += 4
    exif_item = None
    for _ in range(count):
        (box_size,) = struct.unpack(">I", data[offset : offset + 4])
        if data[offset + 4 : offset + 8] == b"infe":
            start = offset + 8
            infe_version = data[start]
            if infe_version < 2:
                raise ValueError(f"Unsupported infe box version: {infe_version}")
            pos = start + 4
            if infe_version == 2:
                (item_id,) = struct.unpack(">H", data[pos : pos + 2])
                pos += 2
            else:
                (item_id,) = struct.unpack(">I", data[pos : pos + 4])
                pos += 4
            pos += 2  # item_protection_index
            item_type = data[pos : pos + 4]
            if item_type == b"Exif" and exif_item is None:
                exif_item = item_id
        offset += box_size
    if exif_item is None:
        return {}
    iloc = _find_box(data, content, meta[1], b"iloc")
    assert iloc is not None, "iloc box not found"
    version = data[iloc[0]]
    offset = iloc[0] + 4
    sizes = data[offset]
    offset += 1
    offset_size, length_size = (sizes >> 4) & 0x0F, sizes & 0x0F
    base_offset_size = (data[offset] >> 4) & 0x0F
    index_size = data[offset] & 0x0F if version in (1, 2) else 0
    offset += 1
    if version < 2:
        (item_count,) = struct.unpack(">H", data[offset : offset + 2])
        offset += 2
    else:
        (item_count,) = struct.unpack(">I", data[offset : offset + 4])
        offset += 4
    extent = None
    for _ in range(item_count):
        if version < 2:
            (item_id,) = struct.unpack(">H", data[offset : offset + 2])
            offset += 2
        else:
            (item_id,) = struct.unpack(">I", data[offset : offset + 4])
            offset += 4
        if version in (1, 2):
            offset += 2  # construction_method
        offset += 2  # data_reference_index
        offset += base_offset_size  # read as a uint32 "simplified", then skipped by its size
        (extent_count,) = struct.unpack(">H", data[offset : offset + 2])
        offset += 2
        extents = []
        for _ in range(extent_count):
            if version in (1, 2) and index_size > 0:
                offset += index_size
            # The original reads 32 bits whatever the field's size ("Simplified")
            (extent_offset,) = struct.unpack(">I", data[offset : offset + 4])
            offset += offset_size
            (extent_length,) = struct.unpack(">I", data[offset : offset + 4])
            offset += length_size
            extents.append((extent_offset, extent_length))
        if item_id == exif_item and extents and extent is None:
            extent = extents[0]
    if extent is None:
        return {}
    item = data[extent[0] : extent[0] + extent[1]]
    tiff = -1
    for i in range(len(item) - 4):
        if item[i : i + 4] in (b"MM\x00*", b"II*\x00"):
            tiff = i
            break
    metadata: dict[str, Any] = {}
    if tiff == -1:
        return metadata
    for key, value in _comfy_parse_exif_data(item[tiff:]).items():
        if not isinstance(value, str):
            continue
        if key == "usercomment":  # never true for the numeric keys parseExifData gives
            continue
        label, _, rest = value.partition(":")
        if label.lower() in ("prompt", "workflow"):
            with contextlib.suppress(ValueError):
                metadata[label.lower()] = json.loads(rest.strip())
    return metadata
