"""The composition root (`Desk`: builds every component from the settings), the ingestion
pipeline, and the facade through which a signed-in user reaches all of it. May import: core,
search, assistant, contracts, access, usage."""
