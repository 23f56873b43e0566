"""search-qa: answer questions by searching a corpus, with Search-R1's ``<search>``/``<answer>`` protocol.

Example::

    env = agentgym.make("search-qa")                       # embedded knowledge base, BM25, 4 turns
    obs, info = env.reset(seed=0, options={"split": "test", "task_id": 0})
    obs, reward, terminated, truncated, info = env.step("<search> Velmora Quint </search>")
    obs, reward, terminated, truncated, info = env.step("<think>...</think><answer> Tarsh </answer>")
    info["em"], info["f1"], info["gold"]

The agent's whole completion is the action (``action_format = "raw"``). The first
``<search>q</search>`` retrieves the ``topk`` best documents for ``q`` and returns them as
``<information>Doc 1(Title: ...) ...</information>`` (reward 0); the first ``<answer>a</answer>``
ends the episode with reward EM(a, gold) (or F1 with ``reward="f1"``); ``info`` then carries
``em``, ``f1``, ``won`` (EM = 1) and ``score`` (F1). A completion with neither block, or an empty
one, is invalid (``action_valid=False``, ``info["error"]``, state unchanged, the turn is spent).
The registered id allows 4 turns (``max_episode_steps``), after which the episode is truncated
with reward 0; ``agentgym.make("search-qa", max_episode_steps=6)`` changes it.

Data sources:

- default: the generated knowledge base of :mod:`.knowledge_base` (splits train 5,500 / test 500,
  1-3 hops, ``info["task_type"]`` = ``"1-hop"`` ...), searched by an in-memory BM25 index;
- ``qa_files={"train": "train.parquet", "test": "test.jsonl"}``: Search-R1 QA files, searched over
  ``corpus="wiki-18.jsonl"`` (in-memory BM25) or through ``retriever``.

``retriever`` is a :class:`~agentgym.tools.retrieval.Retriever`, the URL(s) of Search-R1-compatible
servers (``"http://127.0.0.1:8000"``, several comma-separated, used round-robin), or an index
directory written by :func:`~agentgym.tools.retrieval.build_index`.

State and anchor: the environment state is the set of documents the agent has retrieved so far;
``info["anchor"]`` is their ids, sorted, as a tuple. Two rollouts that reached the same documents
through different wordings are in the same information state, which is what step-level grouping
(GiGPO, HGPO, SALT) should compare; a tuple of the queries themselves would split them by
phrasing and almost never group. Invalid turns and searches that surface nothing new keep the anchor.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

from gymnasium.error import ResetNeeded

from agentgym.core import AgentGymError, TextEnv, task_index
from agentgym.environments.search_qa.data import load_corpus, load_qa
from agentgym.environments.search_qa.knowledge_base import (
    KBConfig,
    KnowledgeBase,
    QATask,
    generate_knowledge_base,
)
from agentgym.environments.search_qa.knowledge_base import expert_action as read_chain
from agentgym.environments.search_qa.metrics import exact_match, f1_score
from agentgym.environments.search_qa.protocol import (
    INSTRUCTIONS,
    format_information,
    invalid_observation,
    parse_action,
    printable,
    verdict_observation,
)
from agentgym.tools.retrieval import BM25Retriever, RetrievalClient, Retriever, load_index

T = TypeVar("T")
_shared_lock = threading.Lock()
_shared_objects: dict[tuple[Any, ...], Any] = {}


def _shared(key: tuple[Any, ...], factory: Callable[[], T]) -> T:
    """One instance per process of expensive read-only objects (indexes, QA files, clients)."""
    with _shared_lock:
        if key not in _shared_objects:
            _shared_objects[key] = factory()
        return _shared_objects[key]


def _resolve_retriever(retriever: Retriever | str | Sequence[str]) -> Retriever:
    if isinstance(retriever, Retriever):
        return retriever
    urls = retriever.split(",") if isinstance(retriever, str) else list(retriever)
    urls = [url.strip() for url in urls if url.strip()]  # "url," has an empty last entry
    if urls and all(url.startswith(("http://", "https://")) for url in urls):
        return _shared(("client", tuple(urls)), lambda: RetrievalClient(urls))
    if isinstance(retriever, str):
        return _shared(("index", retriever), lambda: load_index(retriever))
    raise AgentGymError(
        f"retriever must be a Retriever, server URL(s) or an index directory, got {retriever!r}"
    )


class SearchQAEnv(TextEnv):
    """Answer questions by searching a corpus (Search-R1 protocol); EM reward, F1 in info."""

    instructions = INSTRUCTIONS
    parallelism = "thread"
    splits = ("train", "test")
    action_format = "raw"

    def __init__(
        self,
        retriever: Retriever | str | Sequence[str] | None = None,
        qa_files: Mapping[str, str] | str | os.PathLike | None = None,
        corpus: str | None = None,
        topk: int = 3,
        reward: Literal["em", "f1"] = "em",
        knowledge_base: Mapping[str, Any] | None = None,
        render_mode: str | None = None,
    ):
        super().__init__(render_mode=render_mode)
        if reward not in ("em", "f1"):
            raise AgentGymError(f"reward must be 'em' or 'f1', got {reward!r}")
        if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
            raise AgentGymError(f"topk must be a positive integer, got {topk!r}")
        self.topk = topk
        self.reward_kind = reward
        self.kb: KnowledgeBase | None = None
        if qa_files is None:
            if corpus is not None:
                raise AgentGymError(
                    "corpus= indexes your own documents, which needs your own questions: pass qa_files= too"
                )
            unknown = set(knowledge_base or {}) - set(KBConfig.__dataclass_fields__)
            if unknown:
                raise AgentGymError(
                    f"knowledge_base: unknown option(s) {', '.join(sorted(unknown))}; "
                    f"accepted: {', '.join(KBConfig.__dataclass_fields__)}"
                )
            self.kb = generate_knowledge_base(KBConfig(**(knowledge_base or {})))
            self.tasks = self.kb.tasks
        else:
            if knowledge_base:  # it would be ignored, and the run would not be what was asked
                raise AgentGymError(
                    "knowledge_base= configures the generated world, which qa_files= replaces: pass one of them"
                )
            if retriever is None and corpus is None:
                raise AgentGymError("qa_files= need documents to search: pass corpus= (JSONL) or retriever=")
            files = {"test": qa_files} if isinstance(qa_files, str | os.PathLike) else dict(qa_files)
            if not files:
                raise AgentGymError(
                    "qa_files names no file: give a path, or {split: path} with one split at least"
                )
            self.tasks = {
                split: _shared(("qa", str(path)), lambda p=path: load_qa(p)) for split, path in files.items()
            }
        if retriever is not None:
            self.retriever = _resolve_retriever(retriever)
        elif self.kb is not None:
            kb = self.kb
            self.retriever = _shared(
                ("kb-bm25", kb.config), lambda: BM25Retriever.build(kb.corpus, progress=False)
            )
        else:
            self.retriever = _shared(
                ("corpus-bm25", corpus), lambda: BM25Retriever.build(load_corpus(corpus), progress=False)
            )
        self.tasks = {
            split: tasks for split, tasks in self.tasks.items() if tasks
        }  # as WebShop: no empty split
        if not self.tasks:
            raise AgentGymError("search-qa: every split is empty; there is no question to ask")
        self.splits = tuple(self.tasks)
        self.split = self.splits[0]
        self.task_id = 0
        self._task = self.tasks[self.split][0]
        self._retrieved: dict[str, str] = {}
        self._searched = False  # the oracle's cue on QA files: a search may retrieve nothing
        self._done = False
        self._reset_called = False  # task 0 above only gives render() something to show

    def task_ids(self, split: str) -> list[int]:
        return list(range(len(self._split_tasks(split))))

    def _split_tasks(self, split: str) -> list[QATask]:
        if split not in self.splits:  # a tuple: an unhashable value is simply not in it
            raise AgentGymError(f"unknown split {split!r}; search-qa has {', '.join(self.tasks)}")
        return self.tasks[split]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        split = options.get("split")
        if split is None:  # not given, as in WebShop and ALFWorld
            split = "train" if "train" in self.tasks else self.splits[0]
        tasks = self._split_tasks(split)
        if options.get("task_id") is not None:
            task_id = task_index(options["task_id"], len(tasks), f"split {split!r}")
        else:
            task_id = int(self.np_random.integers(len(tasks)))
        self.split, self.task_id, self._task = split, task_id, tasks[task_id]
        self._retrieved = {}
        self._searched = False
        self._done = False
        self._reset_called = True
        return self._observe(f"Question: {self._task.question}"), self._info()

    def _info(self, **extra: Any) -> dict[str, Any]:
        info: dict[str, Any] = {
            "task": self._task.question,
            "task_id": self.task_id,
            "split": self.split,
            "anchor": tuple(sorted(self._retrieved)),
            "gold": list(self._task.answers),
        }
        if self._task.hops is not None:
            info["task_type"] = f"{self._task.hops}-hop"
        info.update(extra)
        return info

    def _invalid(self, error: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        return (
            self._observe(invalid_observation(error)),
            0.0,
            False,
            False,
            self._info(action_valid=False, error=error),
        )

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if not self._reset_called:
            raise ResetNeeded("search-qa: call reset() before step()")
        if self._done:
            return self._invalid("the question is already answered; call reset() for the next one")
        if not isinstance(action, str):
            return self._invalid(f"an action is a string, not {type(action).__name__}")
        parsed = parse_action(action)
        if parsed.kind is None:
            return self._invalid(parsed.error)
        if parsed.kind == "search":
            hits = self.retriever.search([parsed.content], self.topk)[0]
            for hit in hits:
                self._retrieved.setdefault(hit.id, hit.contents)
            self._searched = True
            return self._observe(format_information(hits)), 0.0, False, False, self._info(action_valid=True)
        em = exact_match(parsed.content, self._task.answers)
        f1 = f1_score(parsed.content, self._task.answers)
        self._done = True
        info = self._info(action_valid=True, answer=parsed.content, em=em, f1=f1, won=em == 1.0, score=f1)
        reward = em if self.reward_kind == "em" else f1
        return self._observe(verdict_observation(parsed.content, em == 1.0)), reward, True, False, info

    def expert_action(self) -> str:
        """Embedded tasks: follow the question's chain through the documents actually retrieved.

        Tasks from QA files have no chain: the expert searches the question once, then answers
        the first gold answer (an oracle, for demonstrations of the protocol). "Once" counts the
        search, not what it found: a question that matches no document is not searched again.
        """
        if not self._reset_called:
            raise ResetNeeded("search-qa: call reset() before expert_action()")
        if self._task.start is not None and self.kb is not None:
            return read_chain(self.kb, self._task, self._retrieved)
        if not self._searched:
            return f"<search>{self._task.question}</search>"
        return f"<answer>{self._task.answers[0]}</answer>"

    def _observe(self, observation: str) -> str:
        """Questions, documents and answers come from user data: keep them inside ``observation_space``."""
        return super()._observe(printable(observation))

    def render(self) -> str:
        return f"Question: {self._task.question}\n\n{self._last_observation}"

    def close(self) -> None:
        """Shared indexes and clients stay open for the other environments of the process."""
