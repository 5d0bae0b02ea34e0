"""The OpenAI-compatible API: ``POST /v1/chat/completions`` (streamed and not) and
``GET /v1/models``; ``model`` picks the persona (``kdesk``, ``kdesk:<role>``)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
