"""What happened: usage events, analytics, knowledge gaps and the recording of each exchange.
May import: core, search, assistant."""
