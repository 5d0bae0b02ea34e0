"""The desk as a service for other programs (docs/api.md): an OpenAI-compatible API, a REST API
and an MCP server, each request acting as the API key's user."""
