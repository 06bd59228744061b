"""The one sentence the person taking a warm transfer hears."""

from __future__ import annotations

from prompts.loader import load_agents
from voice_agent.call_tap import transfer_summary
from voice_agent.conversation.ports import CallInfo


def _call(direction: str = "outbound", **variables: str) -> CallInfo:
    return CallInfo(
        "CA1",
        "MZ1",
        "default",
        direction,
        "+13125550100",
        "+12125550134",  # type: ignore[arg-type]
        "lead_qualifier",
        "cascade",
        variables,
    )


def test_names_the_lead_and_what_they_said() -> None:
    agent = load_agents()["lead_qualifier"]
    summary = transfer_summary(
        _call(first_name="Maria", last_name="Lopez"),
        agent,
        ["I need a new roof.", "About ten thousand dollars!"],
    )
    assert summary == (
        "Transfer from Lead qualifier: Maria Lopez, who said: I need a new roof."
        " About ten thousand dollars."
    )


def test_a_caller_without_a_name_is_named_by_number_and_long_words_are_cut() -> None:
    agent = load_agents()["receptionist"]
    summary = transfer_summary(_call("inbound"), agent, ["word " * 60])
    assert summary.startswith("Transfer from Receptionist: a caller from +13125550100, who said:")
    assert summary.endswith("word…") and len(summary) < 260
    assert transfer_summary(_call("inbound"), agent, []) == (
        "Transfer from Receptionist: a caller from +13125550100."
    )
