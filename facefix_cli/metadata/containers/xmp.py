"""facefix's own XMP property: every text an output carries, where a PNG would have text chunks.

WebP, JPEG and AVIF have no text chunks. The texts that a tool's reader finds in EXIF are
written there (`metadata.carry.embedded_metadata`); the others (InvokeAI's, SwarmUI's, Fooocus's,
NovelAI's, facefix's own record, an input's XMP packet...) have no reader in those formats, so
they go in one documented place that `facefix info` and the walk read back: the XMP property
`facefix:texts` (namespace `FACEFIX_NS`), a JSON list of `[keyword, text]` pairs in the order
a PNG output would hold them as text chunks. A pair whose text is `null` stands for a text
written in EXIF instead (the reader takes it from there), so large graphs are not stored twice.

The JSON is ASCII (`\\uXXXX` escapes), so the packet is valid XML whatever the texts hold.
"""

from __future__ import annotations

import json
import re
from html import unescape
from xml.sax.saxutils import escape

FACEFIX_NS = "https://github.com/facefix/facefix/ns/xmp/1.0/"
_TEXTS_RE = re.compile(rb"<facefix:texts>([^<]*)</facefix:texts>")

Texts = list[tuple[str, str | None]]


def _packet(body: str) -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        f"{body}"
        "</rdf:RDF>\n</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    ).encode()


def texts_packet(texts: Texts) -> bytes:
    """An XMP packet holding `texts` as `facefix:texts`."""
    payload = json.dumps([[keyword, text] for keyword, text in texts], ensure_ascii=True)
    return _packet(
        f'<rdf:Description rdf:about="" xmlns:facefix="{FACEFIX_NS}">\n'
        f"<facefix:texts>{escape(payload)}</facefix:texts>\n"
        "</rdf:Description>\n"
    )


def extension_pointer(guid: str) -> bytes:
    """The main XMP packet of a JPEG whose `facefix:texts` are in its Extended XMP, which
    `guid` names (XMP spec part 3: `xmpNote:HasExtendedXMP`)."""
    return _packet(
        '<rdf:Description rdf:about="" xmlns:xmpNote="http://ns.adobe.com/xmp/note/"'
        f' xmpNote:HasExtendedXMP="{guid}"/>\n'
    )


def read_texts(packet: bytes) -> tuple[Texts | None, str | None]:
    """(texts, problem) of a packet's `facefix:texts`; (None, None) where it has none."""
    found = _TEXTS_RE.search(packet)
    if found is None:
        return None, None
    try:
        pairs = json.loads(unescape(found.group(1).decode("utf-8")))
        texts: Texts = []
        for keyword, text in pairs:
            if not isinstance(keyword, str) or not (text is None or isinstance(text, str)):
                raise ValueError("a pair is not [keyword, text]")
            texts.append((keyword, text))
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError) as error:
        return None, f"XMP facefix:texts is unreadable ({error})"
    return texts, None
