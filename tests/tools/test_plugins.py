"""Tools from Python packages: the sample package (tests/plugins/kdesk_sample_tools), built and
installed by pip, is found by its entry points and its LangChain tools are called unchanged; a
broken plugin is skipped without stopping the desk."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from knowledge.desk.root import Desk
from knowledge.tools.base import ToolCall
from knowledge.tools.plugins import EntryPointTools


def test_the_sample_package_is_found_by_its_entry_points(sample_tools: Path):
    specs = {t.spec.name: t.spec for t in EntryPointTools().tools()}
    count, ticket = specs["word_count"], specs["open_ticket"]
    assert count.source == ticket.source == "plugin:kdesk-sample-tools"
    assert count.description == "Count the words of a text." and not count.acts
    assert count.parameters["required"] == ["text"]
    assert count.parameters["properties"]["text"]["type"] == "string"
    assert ticket.acts and ticket.parameters["properties"]["priority"]["default"] == "normal"


def test_a_plugin_tool_is_called_through_the_users_tool_box(sample_tools: Path, office: Desk):
    opened = importlib.import_module("kdesk_sample_tools").OPENED
    opened.clear()  # tickets of earlier tests
    box = office.for_user("root").tools()
    assert {"word_count", "open_ticket"} <= {s.name for s in box.available()}
    counted = box.call(ToolCall("word_count", {"text": "three little words"}))
    assert counted.outcome == "ok" and counted.result.text == "3 words"
    asked = box.call(ToolCall("open_ticket", {"title": "Printer on fire"}))
    assert asked.outcome == "needs_confirmation"
    done = box.call(ToolCall("open_ticket", {"title": "Printer on fire"}), confirmed=True)
    assert done.result.text == "Opened ticket T-1: Printer on fire (normal)"
    assert opened == [{"title": "Printer on fire", "priority": "normal"}]
    hanna = office.for_user("hanna").tools()  # her role gives the built-in read tools only
    assert hanna.call(ToolCall("word_count", {"text": "x"})).outcome == "denied"


def test_a_broken_plugin_is_logged_and_skipped(
    sample_tools: Path, tmp_path: Path, office: Desk, monkeypatch, caplog
):
    info = tmp_path / "kdesk_broken-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kdesk-broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[knowledge_desk.tools]\nmissing = kdesk_no_such_module:tool\nnot_a_tool = json:dumps\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with caplog.at_level(logging.ERROR, logger="kdesk.tools"):
        names = {t.spec.name for t in EntryPointTools().tools()}
    assert {"word_count", "open_ticket"} <= names
    skipped = [r for r in caplog.records if r.getMessage() == "tool plugin skipped"]
    assert len(skipped) == 2
    office.tool_registry.refresh()
    assert "list_documents" in office.tool_registry.tools()  # the desk starts as before
