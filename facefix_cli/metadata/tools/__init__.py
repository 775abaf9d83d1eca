"""Every tool facefix reads, one module each, registered in `TOOLS`: the one table the readers
and writers dispatch on (each entry's data says what it does; nothing checks a tool by name).

Order matters where a file carries several tools' chunks: the most specific record goes first
(an InvokeAI or NovelAI file is never read as something else; SwarmUI's `sui_image_params`
beats the ComfyUI graph its backend adds beside it; a ComfyUI graph beats the A1111-style
`parameters` a Civitai-oriented ComfyUI saver adds beside it; the JSON layouts in
`parameters` before A1111's text).
"""

from __future__ import annotations

from facefix_cli.metadata.tools import a1111, civitai, comfyui, fooocus, invokeai, novelai, swarmui
from facefix_cli.metadata.tools.base import Extension, Texts, ToolFormat

TOOLS: tuple[ToolFormat, ...] = (
    invokeai.FORMAT,
    novelai.FORMAT,
    civitai.FORMAT,
    swarmui.FORMAT,
    comfyui.FORMAT,
    fooocus.FORMAT,
    a1111.FORMAT,  # last: its `from_payload` takes any text blob as `parameters`
)

__all__ = ["TOOLS", "Extension", "Texts", "ToolFormat"]
