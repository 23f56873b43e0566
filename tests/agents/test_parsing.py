import json

import pytest

from agentgym.agents.parsing import format_action, parse_action


@pytest.mark.parametrize(
    ("text", "action", "valid", "error"),
    [
        ("<think>go</think><action>click[Buy Now]</action>", "click[Buy Now]", True, ""),
        ("<action>  search[red shoes]\n</action>", "search[red shoes]", True, ""),
        ("I would click buy now", "", False, "no <action>"),
        ("<action></action>", "", False, "empty <action>"),
        ("<action>a</action><action>b</action>", "b", False, "2 <action> blocks"),
        ("<action>unterminated", "", False, "no <action>"),
        ("<think>not <action>look</action> yet</think><action>go north</action>", "go north", True, ""),
    ],
)
def test_tag_format(text, action, valid, error):
    parsed = parse_action(text)
    assert (parsed.action, parsed.valid) == (action, valid)
    assert error in parsed.error


def test_require_think():
    assert not parse_action("<action>x</action>", require_think=True).valid
    parsed = parse_action("<think>because</think><action>x</action>", require_think=True)
    assert parsed.valid and parsed.thought == "because"


def test_raw_format_passes_the_completion_through():
    assert parse_action("<search>who</search>", "raw").action == "<search>who</search>"
    assert not parse_action("  ", "raw").valid


def test_tool_call_format_canonicalises_json():
    parsed = parse_action(
        '<tool_call>{"arguments": {"b": 1, "a": 2}, "name": "bash"}</tool_call>', "tool_call"
    )
    assert parsed.valid and json.loads(parsed.action) == {"name": "bash", "arguments": {"a": 2, "b": 1}}
    assert not parse_action("<tool_call>{not json}</tool_call>", "tool_call").valid
    assert not parse_action('<tool_call>{"name": 3}</tool_call>', "tool_call").valid


def test_a_tool_call_nested_past_the_json_parsers_depth_is_invalid_not_a_crash():
    # A degenerate sampler repeating "[" or '{"a":' reaches the JSON parser's recursion limit.
    for text in ("[" * 5000, '{"name": "a", "arguments": ' + '{"a": ' * 5000 + "1" + "}" * 5001):
        parsed = parse_action(f"<tool_call>{text}</tool_call>", "tool_call")
        assert not parsed.valid and "malformed tool call" in parsed.error


@pytest.mark.parametrize("fmt", ["tags", "raw", "tool_call"])
def test_format_then_parse_round_trips(fmt):
    action = '{"arguments": {}, "name": "submit"}' if fmt == "tool_call" else "click[Next >]"
    assert parse_action(format_action(action, fmt), fmt).action == action
