import pytest

import agentgym
from agentgym.agents.chat import AgentConfig, ChatAgent
from agentgym.core import AgentGymError


def test_prompt_shows_task_memory_of_k_steps_and_admissible_actions():
    agent = ChatAgent(AgentConfig(memory=2), instructions="Move with 'go <room>'.")
    agent.start(
        "You are in the hall.", {"task": "Reach the attic.", "available_actions": ["go kitchen", "go cellar"]}
    )
    for room in ("kitchen", "cellar", "study"):
        agent.record(f"go {room}", f"You are in the {room}.", {"available_actions": ["go hall"]})
    system, user = agent.prompt()
    assert "Move with 'go <room>'." in system["content"] and "<action>" in system["content"]
    content = user["content"]
    assert content.startswith("Task: Reach the attic.")
    assert "You have taken 3 step(s). The last 2:" in content
    assert "go kitchen" not in content  # older than K = 2
    assert "[step 2] action: go cellar" in content and "[step 3] action: go study" in content
    assert content.index("Current observation (step 4):\nYou are in the study.") > content.index("[step 3]")
    assert content.endswith("Admissible actions: go hall")


def test_memory_zero_and_long_observations_are_cut():
    agent = ChatAgent(AgentConfig(memory=0, show_available_actions=False))
    agent.start("x" * 50, {"available_actions": ["a"]})
    agent.record("go west", "hall", {})
    agent.record("go east", "study", {})
    assert "step" not in agent.prompt()[1]["content"].split("Current")[0]
    assert "go west" not in agent.prompt()[1]["content"]
    agent = ChatAgent(AgentConfig(memory=1, max_history_chars=10))
    agent.start("y" * 50, {})
    agent.record("a", "now", {})
    assert "y" * 10 + " ..." in agent.prompt()[1]["content"]
    assert "y" * 11 not in agent.prompt()[1]["content"]


def test_environment_format_applies_unless_the_config_overrides_it():
    assert ChatAgent(action_format="raw").parse("<answer>x</answer>").action == "<answer>x</answer>"
    agent = ChatAgent(AgentConfig(action_format="tags"), action_format="raw")
    assert agent.parse("<action>x</action>").action == "x"


def test_compact_prompts_for_small_models():
    config = AgentConfig(memory=2, max_history_chars=0, system_prompt="", include_instructions=False)
    agent = ChatAgent(config, instructions="Long grammar.", action_format="raw")
    agent.start("page one", {})
    agent.record("click[a]", "page two", {})
    [user] = agent.prompt()  # nothing left for a system message
    assert user["role"] == "user"
    assert "page one" not in user["content"] and "[step 1] action: click[a]" in user["content"]
    system = ChatAgent(AgentConfig(include_instructions=False), instructions="Long grammar.").prompt()[0]
    assert system["role"] == "system" and "Long grammar." not in system["content"]


def test_allowed_completions_follow_the_admissible_actions_in_the_agents_format():
    info = {"task": "buy", "available_actions": ["click[buy now]", "search[<query>]"]}
    free = ChatAgent(AgentConfig())
    free.start("page", info)
    assert free.allowed_completions() is None
    agent = ChatAgent(AgentConfig(constrain_actions=True), action_format="tags")
    agent.start("page", info)
    allowed = agent.allowed_completions()
    assert allowed.exact == ("<action>click[buy now]</action>",)
    assert allowed.open_prefixes == ("<action>search[",)
    agent.record("click[buy now]", "done", {})  # no admissible actions listed: nothing to constrain
    assert agent.allowed_completions() is None
    spans = ChatAgent(AgentConfig(constrain_actions=True, copy_free_text="span"))
    spans.start("page", {"task": "", "available_actions": ["search[<query>]"]})
    assert spans.allowed_completions() is None  # no span to copy: the turn is left free


def test_formats_that_cannot_work_are_refused_by_name():
    with pytest.raises(AgentGymError, match="unknown action format 'json'; use one of tags, raw, tool_call"):
        ChatAgent(AgentConfig(), action_format="json")
    with pytest.raises(AgentGymError, match="not tool calls"):
        ChatAgent(AgentConfig(constrain_actions=True), action_format="tool_call")


def test_copying_free_text_offers_the_words_of_the_task_and_the_observation():
    info = {"task": "buy a red lamp", "available_actions": ["search[<query>]"]}
    agent = ChatAgent(AgentConfig(constrain_actions=True, copy_free_text=True))
    agent.start("WebShop [SEP] Instruction: [SEP] a red lamp, price lower than 30.00 [SEP] Search", info)
    words = agent.allowed_completions().free_words
    assert {"buy", "red", "lamp,", "30.00", "Search"} <= set(words)
    assert not any("[" in word or "]" in word for word in words)
    plain = ChatAgent(AgentConfig(constrain_actions=True))
    plain.start("page", info)
    assert plain.allowed_completions().free_words is None
    with pytest.raises(ValueError, match="set constrain_actions=true, or copy_free_text=false"):
        AgentConfig(copy_free_text=True)


def test_constrained_actions_exclude_a_required_think_block():
    with pytest.raises(ValueError, match="require_think"):
        AgentConfig(constrain_actions=True, require_think=True)


def test_a_completion_written_for_an_action_passes_a_required_think_block():
    # Expert demonstrations (SFT targets) are written with format(): a model trained on them must
    # write what the agent then accepts.
    agent = ChatAgent(AgentConfig(require_think=True), action_format="tags")
    for thought in ("", "the key first"):
        parsed = agent.parse(agent.format("take key", thought))
        assert parsed.valid and parsed.action == "take key" and parsed.thought == thought
    assert ChatAgent(AgentConfig()).format("take key") == "<action>take key</action>"


def test_copying_a_span_offers_every_run_of_consecutive_task_words_without_closing_punctuation():
    info = {"task": "red lamp, cheap.", "available_actions": ["click[back]", "search[<query>]"]}
    agent = ChatAgent(AgentConfig(constrain_actions=True, copy_free_text="span"), action_format="raw")
    agent.start("page", info)
    allowed = agent.allowed_completions()
    assert allowed.open_prefixes == () and allowed.free_words is None
    assert sorted(allowed.exact) == sorted(
        [
            "click[back]",
            *(
                f"search[{span}]"
                for span in ("red", "red lamp", "red lamp, cheap", "lamp", "lamp, cheap", "cheap")
            ),
        ]
    )


def test_the_webshop_experts_queries_are_spans_of_its_instructions():
    env = agentgym.make("webshop", catalogue="small")
    agent = ChatAgent(AgentConfig(constrain_actions=True, copy_free_text="span"), action_format="raw")
    for task_id in range(100):
        observation, info = env.reset(seed=0, options={"task_id": task_id})
        agent.start(observation, info)
        query = env.unwrapped.expert_action()
        assert query.startswith("search[") and query in agent.allowed_completions().exact


RESULTS = "Page 1 [SEP] Next > [SEP] B0AAA11111 [SEP] Red Lamp [SEP] $9.99 [SEP] B0BBB22222 [SEP] Blue Lamp"
RESULTS_INFO = {
    "task": "a lamp",
    "available_actions": ["click[next >]", "click[b0aaa11111]", "click[b0bbb22222]"],
    "item_actions": ["click[b0aaa11111]", "click[b0bbb22222]"],
}


def test_ordinal_items_are_numbered_written_by_place_and_sent_by_id():
    config = AgentConfig(ordinal_items=True, constrain_actions=True, show_available_actions=False)
    agent = ChatAgent(config, action_format="tags")
    agent.start(RESULTS, RESULTS_INFO)
    assert (
        "Next > [SEP] (1) B0AAA11111 [SEP] Red Lamp [SEP] $9.99 [SEP] (2) B0BBB22222"
        in agent.prompt()[-1]["content"]
    )
    assert agent.format("click[b0bbb22222]") == "<action>click[2]</action>"
    assert agent.format("click[next >]") == "<action>click[next >]</action>"
    assert agent.parse("<action>click[2]</action>").action == "click[b0bbb22222]"
    assert agent.parse("<action>click[3]</action>").action == "click[3]"  # no third item: the env says so
    assert agent.allowed_completions().exact == (
        "<action>click[next >]</action>",
        "<action>click[1]</action>",
        "<action>click[2]</action>",
    )
    agent.record("click[b0aaa11111]", "Red Lamp [SEP] Buy Now", {"available_actions": ["click[buy now]"]})
    assert "[step 1] action: click[b0aaa11111]" in agent.prompt()[-1]["content"]  # memory shows what was done
    assert agent.parse("<action>click[1]</action>").action == "click[1]"  # no items on this page


def test_ordinals_stay_off_by_default_and_yield_to_an_action_of_the_same_text():
    agent = ChatAgent(AgentConfig(), action_format="tags")
    agent.start(RESULTS, RESULTS_INFO)
    assert "(1)" not in agent.prompt()[1]["content"]
    assert agent.format("click[b0aaa11111]") == "<action>click[b0aaa11111]</action>"
    clash = dict(RESULTS_INFO, available_actions=[*RESULTS_INFO["available_actions"], "click[1]"])
    agent = ChatAgent(AgentConfig(ordinal_items=True), action_format="tags")
    agent.start(RESULTS, clash)
    assert agent.parse("<action>click[1]</action>").action == "click[1]"
    assert agent.parse("<action>click[2]</action>").action == "click[b0bbb22222]"


def test_an_item_is_numbered_by_the_ordinal_that_names_it_when_an_earlier_ordinal_is_taken():
    clash = dict(RESULTS_INFO, available_actions=[*RESULTS_INFO["available_actions"], "click[1]"])
    agent = ChatAgent(AgentConfig(ordinal_items=True), action_format="tags")
    agent.start(RESULTS, clash)
    content = agent.prompt()[-1]["content"]
    # click[1] is the page's own action, so the first item keeps its id and the second is (2)
    assert "Next > [SEP] B0AAA11111 [SEP] Red Lamp [SEP] $9.99 [SEP] (2) B0BBB22222" in content
    assert "(1)" not in content
    assert agent.parse("<action>click[2]</action>").action == "click[b0bbb22222]"


def test_tools_are_listed_for_the_tool_call_format_only():
    tools = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]
    calling = ChatAgent(AgentConfig(), "Use the tool.", action_format="tool_call", tools=tools)
    assert '"name": "search"' in calling.system_prompt
    tagging = ChatAgent(AgentConfig(), "Use the tool.", action_format="tags", tools=tools)
    assert "search" not in tagging.system_prompt
