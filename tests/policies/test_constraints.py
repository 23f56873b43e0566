import pytest
import torch

from agentgym.agents.parsing import format_action
from agentgym.policies import SamplingParams
from agentgym.policies.constraints import AllowedCompletions, TokenTrie, TrieBuilder
from agentgym.policies.hf import HFPolicy, load_tokenizer
from agentgym.trainers.data import TurnRows, response_log_probs
from agentgym.trainers.models import load_model

PROMPT = [{"role": "user", "content": "The door to the attic is locked. A key lies here."}]
ACTIONS = ["click[take key]", "click[open door]", "click[go north]", "search[<query>]"]


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(str(tiny_model_dir), device="cpu")[0]


@pytest.fixture(scope="module", params=["hf", "vllm"])
def policy(request, tiny_model_dir, model):
    """Both generators that decode under constraints; the same tests hold for each."""
    if request.param == "vllm":
        return request.getfixturevalue("vllm_policy")
    return HFPolicy(model, load_model(str(tiny_model_dir), device="cpu")[1])


def test_templates_become_open_prefixes_and_the_rest_exact_completions():
    allowed = AllowedCompletions.from_actions([*ACTIONS, "click[take key]", "click[< prev]"], format_action)
    assert allowed.exact == (
        "<action>click[take key]</action>",
        "<action>click[open door]</action>",
        "<action>click[go north]</action>",
        "<action>click[< prev]</action>",
    )
    assert allowed.open_prefixes == ("<action>search[",)
    assert allowed.closings == ("]</action>",) and allowed.free_words is None


def test_the_trie_allows_only_paths_to_an_allowed_completion():
    end = 0
    trie = TokenTrie(exact=[[5, 6], [5, 7, 8]], open_prefixes=[[9]], end_id=end)
    assert sorted(TokenTrie.allowed(trie.root)) == [5, 9]
    after_5 = TokenTrie.advance(trie.root, 5)
    assert sorted(TokenTrie.allowed(after_5)) == [6, 7]
    assert TokenTrie.allowed(TokenTrie.advance(after_5, 6)) == [end]  # a finished completion must end
    open_state = TokenTrie.advance(trie.root, 9)
    assert TokenTrie.allowed(open_state) is None  # free text after an open prefix
    assert TokenTrie.advance(open_state, 123) is None
    with pytest.raises(KeyError):
        TokenTrie.advance(trie.root, 6)


def test_limited_free_text_takes_vocabulary_tokens_until_the_closing_starts():
    end = 0
    trie = TokenTrie(
        exact=[[5, 6]], open_prefixes=[[9]], end_id=end, closings=[[3, 4]], free_vocabulary=[20, 21, 3]
    )
    free = TokenTrie.advance(trie.root, 9)
    assert TokenTrie.allowed(free) == [3, 20, 21]  # the closing's first token never counts as free text
    assert TokenTrie.advance(TokenTrie.advance(free, 20), 21) is free  # any number of vocabulary tokens
    with pytest.raises(KeyError):
        TokenTrie.advance(free, 22)
    closing = TokenTrie.advance(free, 3)
    assert TokenTrie.allowed(closing) == [4]
    assert TokenTrie.allowed(TokenTrie.advance(closing, 4)) == [end]
    with pytest.raises(ValueError, match="closing"):
        TokenTrie(exact=[], open_prefixes=[[9]], end_id=end, free_vocabulary=[20])


def test_a_full_token_cache_still_encodes_the_texts_it_had_cached(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    builder = TrieBuilder(tokenizer, tokenizer.eos_token_id, cache_size=3)
    texts = ["<action>click[take key]</action>", "<action>click[open door]</action>", "go", "attic"]
    expected = tokenizer(texts, add_special_tokens=False)["input_ids"]
    builder.encode(texts[:2])
    # a long run fills the cache; the call that overflows it names texts encoded before
    take, open_door, go, attic = expected
    assert builder.encode([texts[0], texts[2], texts[3], texts[1]]) == [take, go, attic, open_door]
    assert builder.encode(texts) == expected


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_constrained_completions_are_allowed_ones(policy, temperature):
    exact = ACTIONS[:3]
    allowed = AllowedCompletions.from_actions(exact, format_action)
    sampling = SamplingParams(temperature=temperature, max_tokens=40, seed=5)
    completions = policy.generate([PROMPT] * 16, sampling, allowed=[allowed] * 16)
    eos = policy.tokenizer.eos_token_id
    for completion in completions:
        assert completion.text in allowed.exact
        assert completion.token_ids[-1] == eos and completion.finish_reason == "stop"
    if temperature > 0:  # sampling spreads over the allowed completions, it does not collapse onto one
        assert len({c.text for c in completions}) >= 2
    # Unconstrained, this untrained model writes none of them.
    free = policy.generate([PROMPT] * 4, sampling)
    assert not any(c.text in allowed.exact for c in free)


def test_completions_the_token_budget_cannot_finish_are_not_started(policy):
    actions = ["click[take key]", "click[xylophone quiz jumbo]"]  # words the model's tokenizer never saw
    tokens = policy.tokenizer([format_action(action) for action in actions], add_special_tokens=False)
    short, long = (len(ids) + 1 for ids in tokens["input_ids"])  # with the end token
    assert short < long
    allowed = AllowedCompletions.from_actions(actions, format_action)
    sampling = SamplingParams(temperature=1.0, max_tokens=short, seed=3)
    completions = policy.generate([PROMPT] * 16, sampling, allowed=[allowed] * 16)
    assert {c.text for c in completions} == {"<action>click[take key]</action>"}
    # With room for both, both are written; with room for neither, neither is left out.
    roomy = policy.generate(
        [PROMPT] * 16, sampling.model_copy(update={"max_tokens": long}), allowed=[allowed] * 16
    )
    assert len({c.text for c in roomy}) == 2
    cramped = policy.generate(
        [PROMPT] * 16, sampling.model_copy(update={"max_tokens": short - 1}), allowed=[allowed] * 16
    )
    assert all(c.finish_reason == "length" for c in cramped)


def test_an_open_prefix_is_written_and_then_generation_is_free(policy):
    allowed = AllowedCompletions.from_actions(["search[<query>]"], format_action)
    [completion] = policy.generate(
        [PROMPT], SamplingParams(temperature=1.0, max_tokens=12, seed=2), allowed=[allowed]
    )
    assert completion.text.startswith("<action>search[")
    assert len(completion.text) > len("<action>search[")


@pytest.mark.parametrize("seed", range(4))
def test_a_query_limited_to_free_words_copies_their_tokens_and_closes_the_action(policy, seed):
    words = ["attic", "key", "door"]
    allowed = AllowedCompletions.from_actions(["search[<query>]"], format_action, free_words=words)
    sampling = SamplingParams(temperature=1.0, max_tokens=24, seed=seed)
    completions = policy.generate([PROMPT] * 8, sampling, allowed=[allowed] * 8)
    tokenizer = policy.tokenizer
    spellings = [spelling for word in words for spelling in (word, " " + word)]
    word_tokens = {t for ids in tokenizer(spellings, add_special_tokens=False)["input_ids"] for t in ids}
    prefix = len(tokenizer("<action>search[", add_special_tokens=False)["input_ids"])
    closing = tokenizer("]</action>", add_special_tokens=False)["input_ids"]
    finished = [c for c in completions if c.finish_reason == "stop"]
    for completion in completions:
        assert completion.text.startswith("<action>search[")
        written = completion.token_ids[prefix:]
        query = written[: written.index(closing[0])] if closing[0] in written else written
        assert set(query) <= word_tokens
    for completion in finished:
        assert completion.text.endswith("]</action>")
        assert completion.token_ids[-1] == tokenizer.eos_token_id
    assert finished  # the untrained model reaches the closing within the budget in some samples


def test_logprobs_are_those_of_the_distribution_renormalised_over_the_allowed_tokens(policy, model):
    allowed = AllowedCompletions.from_actions(ACTIONS[:3], format_action)
    sampling = SamplingParams(temperature=0.7, max_tokens=40, seed=7)
    [completion] = policy.generate([PROMPT], sampling, allowed=[allowed])
    assert len(completion.allowed_token_ids) == len(completion.token_ids)
    ids = torch.tensor([completion.prompt_ids + completion.token_ids])
    with torch.no_grad():
        logits = model(ids).logits[0, len(completion.prompt_ids) - 1 : -1].float() / 0.7
    for position, (token, tokens) in enumerate(
        zip(completion.token_ids, completion.allowed_token_ids, strict=True)
    ):
        assert token in tokens
        restricted = torch.log_softmax(logits[position, tokens], -1)
        expected = restricted[tokens.index(token)].item()
        assert completion.logprobs[position] == pytest.approx(expected, abs=1e-4)
        if len(tokens) == 1:  # a forced token is no decision: probability 1
            assert completion.logprobs[position] == pytest.approx(0.0, abs=1e-6)
    assert any(len(tokens) > 1 for tokens in completion.allowed_token_ids)


def test_the_trainer_recomputes_the_sampled_logprobs_of_constrained_turns(policy, model):
    allowed = AllowedCompletions.from_actions([*ACTIONS[:3], "search[<query>]"], format_action)
    sampling = SamplingParams(temperature=1.0, max_tokens=12, seed=3)
    completions = policy.generate([PROMPT] * 6, sampling, allowed=[allowed] * 5 + [None])
    rows = TurnRows(
        [c.prompt_ids for c in completions],
        [c.token_ids for c in completions],
        [c.logprobs for c in completions],
        [c.allowed_token_ids for c in completions],
    )
    batch, old = rows.micro_batch(range(len(rows)), policy.tokenizer.pad_token_id)
    log_probs, entropy = response_log_probs(model, batch, temperature=1.0, with_entropy=True)
    mask = batch.response_mask.bool()
    assert torch.allclose(log_probs[mask], old[mask], atol=1e-4)
    forced = batch.allowed_mask.sum(-1) == 1
    assert forced.any() and torch.allclose(entropy[forced], torch.zeros(()), atol=1e-5)
    model.zero_grad()
    ((log_probs + entropy) * batch.response_mask).sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    model.zero_grad()


def test_prompts_without_a_constraint_are_left_free(policy):
    allowed = AllowedCompletions.from_actions(ACTIONS[:1], format_action)
    sampling = SamplingParams(temperature=0.0, max_tokens=40)
    constrained, free = policy.generate([PROMPT, PROMPT], sampling, allowed=[allowed, None])
    [alone] = policy.generate([PROMPT], sampling)
    assert constrained.text == allowed.exact[0]
    assert free.token_ids == alone.token_ids
    with pytest.raises(ValueError, match="entries"):
        policy.generate([PROMPT, PROMPT], sampling, allowed=[allowed])
