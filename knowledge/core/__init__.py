"""The shared kernel: settings, errors, our own types, the database engine, text utilities,
JSON logging, Prometheus metrics and redaction. Imports nothing else of knowledge/."""
