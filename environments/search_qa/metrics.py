"""Answer scoring for open-domain QA: SQuAD-style normalisation, exact match and token F1.

Example::

    exact_match("The Orlen Institute.", ["Orlen Institute"])   # 1.0
    f1_score("Orlen", ["Orlen Institute"])                      # 2 * (1 * 0.5) / 1.5 = 0.667

Normalisation (SQuAD v1.1's ``normalize_answer``, also Search-R1's): lowercase, drop ASCII
punctuation, drop the articles a/an/the, collapse whitespace. Against several gold answers the
best score counts; a single string is one gold answer, as in Search-R1's ``em_check``. F1 is the
harmonic mean of token precision and recall over the normalised tokens (counted with
multiplicity); when either side normalises to nothing, F1 is 1 if both do and 0 otherwise (the
SQuAD v2 convention, so F1 agrees with EM on empty answers).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _gold_answers(golds: str | Iterable[str]) -> Iterable[str]:
    # A bare string is one answer; iterating it would score the prediction against its letters.
    return (golds,) if isinstance(golds, str) else golds


def exact_match(prediction: str, golds: str | Iterable[str]) -> float:
    """1.0 if the normalised prediction equals a normalised gold answer, else 0.0."""
    predicted = normalize_answer(prediction)
    return float(any(predicted == normalize_answer(gold) for gold in _gold_answers(golds)))


def _token_f1(prediction: str, gold: str) -> float:
    predicted, reference = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not predicted or not reference:
        return float(predicted == reference)
    common = sum((Counter(predicted) & Counter(reference)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(reference)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, golds: str | Iterable[str]) -> float:
    """The best token F1 of ``prediction`` against any gold answer (0.0 without gold answers)."""
    return max((_token_f1(prediction, gold) for gold in _gold_answers(golds)), default=0.0)
