"""metadata.tools.swarmui: SwarmUI's parameters JSON."""

from __future__ import annotations

import json

from metadata_support import (
    chunks_of,
)

from facefix_cli.io.pngchunks import (
    text_chunk,
)
from facefix_cli.metadata import (
    parse_generation,
)


def test_swarmui_parameters_json():
    params = {
        "sui_image_params": {
            "prompt": "a lake",
            "negativeprompt": "people",
            "model": "sdxl_base",
            "seed": 77,
            "steps": 25,
            "cfgscale": 6,
            "width": 1024,
            "height": 1024,
            "swarm_version": "0.9.2",
        }
    }
    record = parse_generation(chunks_of(text_chunk("parameters", json.dumps(params))))
    assert (record.tool, record.prompt, record.negative_prompt) == ("SwarmUI", "a lake", "people")
    assert (record.seed, record.cfg, record.model) == (77, 6.0, "sdxl_base")
