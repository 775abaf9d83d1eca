"""Containers: where metadata sits in a file, below any tool's meaning of it.

- `pngtext`: PNG text chunks (tEXt, zTXt, iTXt) decoded within size and count limits.
- `exif`: EXIF tags (IFD0 and the Exif IFD) and the UserComment's character codes.
- `foreign`: the EXIF, XMP, ICC profile and comments of a JPEG or WebP file.
- `stealth`: settings hidden in the low bits of the alpha (or RGB) channel.
"""
