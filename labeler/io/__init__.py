"""Image I/O: decoding, scanning folders, caches on disk, atomic artifacts, uploads and allowed folders."""
