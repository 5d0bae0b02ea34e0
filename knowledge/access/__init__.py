"""Who may do what: accounts (local and OIDC), roles with their pages, collections, tools and
persona, the audit log and rate limits. May import: core, search, assistant (personas)."""
