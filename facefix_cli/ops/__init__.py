"""The image operations, each a small pure function over arrays or tensors: upscale, detect,
align, restore, paste."""
