"""The decoded cache: a source decoded once per resolution into a memory-mappable file.

``location`` picks where caches live, ``manifest`` is the small record beside each one,
``decode`` turns one image into its cached square (torch-free: it runs in the decoding
processes), ``build`` decodes a source into a cache (in parallel, resumable, atomic) and
``mapped`` opens a finished cache and hands out rows of it.
"""
