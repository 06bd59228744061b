from __future__ import annotations

import pytest

from voice_agent.providers.tools import tool_specs


def test_specs_are_openai_function_tools_in_the_given_order() -> None:
    specs = tool_specs(["transfer_call", "end_call"])

    assert [s["function"]["name"] for s in specs] == ["transfer_call", "end_call"]
    for spec in specs:
        assert spec["type"] == "function"
        parameters = spec["function"]["parameters"]
        assert parameters["type"] == "object"
        assert parameters["properties"]["reason"]["type"] == "string"
        assert parameters["required"] == []  # the reason is optional
        assert spec["function"]["description"]


def test_no_names_no_tools() -> None:
    assert tool_specs([]) == []


def test_unknown_tool_is_refused_by_name() -> None:
    with pytest.raises(KeyError, match="book_callback"):
        tool_specs(["end_call", "book_callback"])


def test_returned_specs_are_independent_copies() -> None:
    first = tool_specs(["end_call"])
    first[0]["function"]["name"] = "changed"

    assert tool_specs(["end_call"])[0]["function"]["name"] == "end_call"
