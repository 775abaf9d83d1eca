"""metadata.containers: EXIF UserComment encodings, JPEG and WebP metadata turned into PNG chunks."""

from __future__ import annotations

import json
import zlib

import piexif
import piexif.helper
import pytest
from metadata_support import (
    A1111_PARAMETERS,
    FOOOCUS,
    chunks_of,
    encoded,
    exif_with_comment,
    png_with,
    read_chunks,
    text_of,
)
from PIL import ImageCms

from facefix_cli.io.pngchunks import (
    Chunk,
    exif_chunk,
    iccp_chunk,
    parse_chunks,
    text_chunk,
)
from facefix_cli.metadata import (
    UnsupportedImageError,
    chunks_for_foreign_image,
    chunks_from_bytes,
    decode_user_comment,
    parse_generation,
)


def utf16_comment(text: str, byte_order: str) -> bytes:
    return b"UNICODE\x00" + text.encode(f"utf-16-{byte_order}")


@pytest.mark.parametrize(
    "comment",
    [
        piexif.helper.UserComment.dump(A1111_PARAMETERS, encoding="unicode"),  # as A1111 writes
        utf16_comment(A1111_PARAMETERS, "le"),
        utf16_comment(A1111_PARAMETERS, "be"),
        b"UNICODE\x00" + A1111_PARAMETERS.encode("utf-16"),  # with a BOM
        piexif.helper.UserComment.dump(A1111_PARAMETERS, encoding="ascii"),
    ],
    ids=["unicode-piexif", "unicode-le", "unicode-be", "unicode-bom", "ascii"],
)
def test_user_comment_encodings(comment):
    assert decode_user_comment(comment) == (A1111_PARAMETERS, None)


def test_user_comment_non_ascii_in_both_byte_orders():
    text = "Zürich 富士山"
    assert decode_user_comment(utf16_comment(text, "le"))[0] == text
    assert decode_user_comment(utf16_comment(text, "be"))[0] == text


def test_user_comment_odd_prefix_and_length_are_problems():
    text, problem = decode_user_comment(b"UNICODE\x00\x00a\x00")
    assert text == "a" and "odd byte count" in problem
    text, problem = decode_user_comment(b"no prefix here")
    assert text == "no prefix here" and "no character-code prefix" in problem


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
@pytest.mark.parametrize("encoding", ["unicode", "ascii"])
def test_foreign_image_metadata_becomes_png_chunks(fmt, encoding):
    comment = piexif.helper.UserComment.dump(A1111_PARAMETERS, encoding=encoding)
    exif = exif_with_comment(comment)
    data = encoded(fmt, exif=exif)
    chunks = chunks_for_foreign_image(data)
    assert chunks[0] == exif_chunk(exif)
    assert chunks[0].data == exif[len(b"Exif\x00\x00") :]  # the TIFF structure, as eXIf holds it
    assert text_of(chunks, "parameters") == [A1111_PARAMETERS]
    record = parse_generation(chunks)
    assert (record.tool, record.seed, record.negative_prompt) == (
        "AUTOMATIC1111",
        3141592653,
        "blurry, lowres",
    )


def test_jpeg_icc_xmp_and_comment_are_carried():
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">facefix test</x:xmpmeta>'
    data = encoded("JPEG", icc_profile=icc, xmp=xmp, comment=b"shot on a pinhole")
    chunks = chunks_for_foreign_image(data)
    assert chunks[0] == iccp_chunk(icc)
    assert zlib.decompress(chunks[0].data.split(b"\x00", 2)[2]) == icc
    assert text_of(chunks, "XML:com.adobe.xmp") == [xmp.decode()]
    assert text_of(chunks, "Comment") == ["shot on a pinhole"]


def test_webp_icc_and_xmp_are_carried():
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encoded("WEBP", icc_profile=icc, xmp=b"<x:xmpmeta>w</x:xmpmeta>")
    chunks = chunks_for_foreign_image(data)
    assert chunks[0] == iccp_chunk(icc)
    assert text_of(chunks, "XML:com.adobe.xmp") == ["<x:xmpmeta>w</x:xmpmeta>"]


def test_fooocus_jpeg_scheme_from_maker_note():
    comment = piexif.helper.UserComment.dump(json.dumps(FOOOCUS), encoding="unicode")
    data = encoded("JPEG", exif=exif_with_comment(comment, maker_note=b"fooocus"))
    chunks = chunks_for_foreign_image(data)
    assert text_of(chunks, "fooocus_scheme") == ["fooocus"]
    assert parse_generation(chunks).tool == "Fooocus"


def test_png_exif_user_comment_is_read_when_there_is_no_parameters_chunk():
    comment = piexif.helper.UserComment.dump(A1111_PARAMETERS, encoding="unicode")
    record = parse_generation(chunks_of(exif_chunk(exif_with_comment(comment))))
    assert record.tool == "AUTOMATIC1111"
    assert record.sources == ["EXIF UserComment"]


def test_exif_that_is_not_tiff_is_a_problem_and_is_never_opened_as_a_path(tmp_path):
    # piexif.load opens unrecognised bytes as a file name; that must never happen.
    decoy = tmp_path / "decoy.jpg"
    decoy.write_bytes(encoded("JPEG", exif=exif_with_comment(b"ASCII\x00\x00\x00secret")))
    record = parse_generation(chunks_of(Chunk(b"eXIf", str(decoy).encode())))
    assert "EXIF UserComment" not in record.raw
    assert any("TIFF header" in p for p in record.problems)


def test_truncated_foreign_files_give_what_they_have():
    data = encoded("JPEG", exif=exif_with_comment(b"ASCII\x00\x00\x00a cat"))
    assert chunks_for_foreign_image(data[:30]) == []
    webp = encoded("WEBP", exif=exif_with_comment(b"ASCII\x00\x00\x00a cat"))
    assert isinstance(chunks_for_foreign_image(webp[:20]), list)


def test_read_chunks_dispatches_on_signature(tmp_path):
    png = tmp_path / "a.png"
    png.write_bytes(png_with(text_chunk("parameters", A1111_PARAMETERS)))
    jpg = tmp_path / "renamed.png"  # the signature decides, not the name
    jpg.write_bytes(encoded("JPEG", exif=exif_with_comment(b"ASCII\x00\x00\x00a cat")))
    assert parse_chunks(png.read_bytes()) == read_chunks(png)
    assert text_of(read_chunks(jpg), "parameters") == ["a cat"]
    with pytest.raises(UnsupportedImageError):
        chunks_from_bytes(b"GIF89a....")
