"""Answering: personas, chat models (one interface, a class per backend), the evidence
judgement, grounded answers with verified citations, compliance rules. May import: core,
search."""
