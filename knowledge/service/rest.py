"""The REST API under ``/api``: search, ask, documents, jobs, feedback, usage summary."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["Knowledge Desk"])
