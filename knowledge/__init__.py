"""Knowledge Desk: the knowledge base and the assistant (no UI code here)."""

import os

# OpenMP threads that spin while waiting make torch and llama.cpp crawl (100x) whenever the
# machine is busy, e.g. a team server answering several people. Must be set before either loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
