"""Documents in, structured pieces out: PDF parsing, chunking, clause extraction.

Pure functions only: no store, no UI, no imports from ``knowledge``.
"""
