"""Documents in, structured pieces out: reading PDFs and the other formats, chunking, clause
extraction.

Pure functions only: no store, no UI, no imports from ``knowledge``.
"""
