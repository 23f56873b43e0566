import pytest

from agentgym.agents.chat import AgentConfig, ChatAgent


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
    assert "step" not in agent.prompt()[1]["content"].split("Current")[0]
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
    agent = ChatAgent(AgentConfig(constrain_actions=True), action_format="tool_call")
    agent.start("page", info)
    allowed = agent.allowed_completions()
    assert allowed.exact == ("<tool_call>click[buy now]</tool_call>",)
    assert allowed.open_prefixes == ("<tool_call>search[",)
    agent.record("click[buy now]", "done", {})  # no admissible actions listed: nothing to constrain
    assert agent.allowed_completions() is None


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
    with pytest.raises(ValueError, match="constrain_actions"):
        AgentConfig(copy_free_text=True)


def test_constrained_actions_exclude_a_required_think_block():
    with pytest.raises(ValueError, match="require_think"):
        AgentConfig(constrain_actions=True, require_think=True)
