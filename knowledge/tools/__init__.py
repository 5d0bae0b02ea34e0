"""Tools the assistant can call for a signed-in user: what a tool is (base.py), where tools come
from (built in, Python packages through entry points, MCP servers, admins' webhooks), and how a
call is permitted, confirmed, timed out, audited and measured."""
