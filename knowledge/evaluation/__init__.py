"""Measuring: retrieval and answer evaluation on datasets, the naive baseline, calibration of
the evidence model, clause-extraction scores and `kdesk bench`. May import: everything
below the command line."""
