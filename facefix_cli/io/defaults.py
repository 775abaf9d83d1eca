"""Defaults of the file stages that the CLI shows in its help, in a module that imports nothing
(the CLI must start without loading numpy, OpenCV or torch)."""

# zlib level of the output PNGs. Every level is lossless; 1 encodes ~5x faster than 6 for
# ~12 % larger files (benchmarks/bench_encode.py), and encoding is the CPU stage that bounds a
# fast GPU. InvokeAI ships the same default (its `pil_compress_level`).
DEFAULT_PNG_LEVEL = 1
