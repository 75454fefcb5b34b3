"""The decoded cache: a source decoded once per resolution into one flat file of rows.

``location`` picks where caches live, ``manifest`` is the small record beside each one,
``decode`` turns one image into its cached square (torch-free: it runs in the decoding
processes), ``build`` decodes a source into a cache (in parallel, resumable, atomic) and
``rows`` opens a finished cache and reads rows of it.
"""
