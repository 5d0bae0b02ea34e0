"""The composition root (`Desk`: builds every component from the settings), the ingestion
pipeline, the facade through which a signed-in user reaches all of it, and the backup and
restore of every store (backup.py, archive.py). May import: core,
search, assistant, contracts, access, usage."""
