"""What every command shares: the desk it works on, JSON output and dates."""

from __future__ import annotations

import argparse
import json
from datetime import date
from typing import TYPE_CHECKING

from knowledge.core.settings import load_settings

if TYPE_CHECKING:  # the CLI imports the heavy stack only for the commands that need it
    from knowledge.desk.root import Desk


def open_desk() -> Desk:
    """The desk of the configured data directory (tests swap it for one sharing a model)."""
    from knowledge.desk.root import Desk

    return Desk(load_settings())


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def day(text: str) -> date:
    """A YYYY-MM-DD argument."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None
