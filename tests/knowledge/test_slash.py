"""Slash commands mapped to a tool's JSON schema, and the usage messages of those that cannot be."""

from __future__ import annotations

import pytest

from knowledge.tools.base import ToolCall
from knowledge.tools.slash import SlashUsageError, is_slash, parse_slash, tool_list, usage
from tests.toolbox_double import COUNT, SEND_EMAIL, SUMMARISE, DoubleToolBox

TOOLS = DoubleToolBox.standard().available()


def call_of(text: str) -> ToolCall | None:
    return parse_slash(text, TOOLS).call


def test_tools_lists_every_tool_with_its_usage_and_says_which_act():
    assert parse_slash("/tools", TOOLS).call is None
    listed = tool_list(TOOLS)
    assert "`/summarise <document> [words=<integer>]`" in listed
    assert "`/send_email <to> [subject=<string>]`: Send an email. (asks you first)" in listed
    assert tool_list([]) == "No tools are available to you."


def test_a_single_required_string_takes_the_rest_of_the_line():
    assert call_of("/summarise leave-policy.pdf") == ToolCall(
        "summarise", {"document": "leave-policy.pdf"}
    )
    assert call_of("  /summarise   Leave policy 2024 ") == ToolCall(
        "summarise", {"document": "Leave policy 2024"}
    )


def test_key_value_pairs_are_converted_to_the_schema_types():
    assert call_of('/count n=3 what="open tickets" exact=yes') == ToolCall(
        "count", {"n": 3, "what": "open tickets", "exact": True}
    )
    assert call_of("/summarise document=leave-policy.pdf words=50") == ToolCall(
        "summarise", {"document": "leave-policy.pdf", "words": 50}
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("/count n=three what=x", "/count: n must be a whole number, not 'three'"),
        ("/count n=3", "/count: missing what"),
        ("/count 3 tickets", "/count: cannot read '3'"),
        ("/count n=1 what=x exact=maybe", "exact must be true or false, not 'maybe'"),
        ("/summarise", "/summarise: missing document"),
        ('/count n=1 what="x', "the quotes do not match"),
    ],
)
def test_what_cannot_be_mapped_says_how_to_write_it(text: str, problem: str):
    with pytest.raises(SlashUsageError) as raised:
        parse_slash(text, TOOLS)
    assert problem in str(raised.value)
    assert "Usage: /" in str(raised.value)


def test_an_unknown_tool_names_the_ones_there_are():
    with pytest.raises(SlashUsageError, match=r"There is no tool /translate\. Type /tools"):
        parse_slash("/translate hello", TOOLS)
    with pytest.raises(SlashUsageError, match="none for you"):
        parse_slash("/summarise x", [])


def test_usage_lines_and_what_counts_as_a_command():
    assert usage(COUNT.spec) == "/count n=<integer> what=<string> [exact=<boolean>]"
    assert usage(SEND_EMAIL.spec) == "/send_email <to> [subject=<string>]"
    assert usage(SUMMARISE.spec).startswith("/summarise <document>")
    assert is_slash(" /tools") and not is_slash("what is /tools?")


def test_a_unique_beginning_of_a_tool_name_calls_it():
    from knowledge.tools.base import ToolSpec

    one_text = {"type": "object", "properties": {"document": {"type": "string"}}}
    one_text["required"] = ["document"]
    tools = [ToolSpec("summarise_document", "s", one_text), ToolSpec("list_documents", "l")]
    command = parse_slash("/summarise leave-policy.pdf", tools)
    assert command.call is not None and command.call.name == "summarise_document"
    assert command.call.arguments == {"document": "leave-policy.pdf"}
    with pytest.raises(SlashUsageError, match="no tool /s"):
        parse_slash("/s leave-policy.pdf", [*tools, ToolSpec("search_web", "w")])  # ambiguous
