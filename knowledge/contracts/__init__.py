"""Contracts: clause records extracted from contract PDFs (reviewable, page-linked) and the
chat's use of them. May import: core, search, assistant."""
