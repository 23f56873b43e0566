"""search-qa: Search-R1-style question answering over a corpus (see :mod:`.env`)."""

from agentgym.environments.search_qa.data import load_corpus, load_qa
from agentgym.environments.search_qa.env import SearchQAEnv
from agentgym.environments.search_qa.knowledge_base import (
    KBConfig,
    KnowledgeBase,
    QATask,
    build_knowledge_base,
    generate_knowledge_base,
)
from agentgym.environments.search_qa.metrics import exact_match, f1_score, normalize_answer
from agentgym.environments.search_qa.protocol import INSTRUCTIONS, Action, format_information, parse_action

__all__ = [
    "INSTRUCTIONS",
    "Action",
    "KBConfig",
    "KnowledgeBase",
    "QATask",
    "SearchQAEnv",
    "build_knowledge_base",
    "exact_match",
    "f1_score",
    "format_information",
    "generate_knowledge_base",
    "load_corpus",
    "load_qa",
    "normalize_answer",
    "parse_action",
]
