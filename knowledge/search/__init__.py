"""Finding passages: the knowledge store (documents and chunks in SQL, vectors in the index,
original files on disk), embeddings, the in-memory indexes, hybrid ranking with its focus and
sentence stages, metadata filters and the page viewer. May import: core."""
