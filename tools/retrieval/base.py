"""The retriever contract, the corpus it searches, and the progress bars of index builds.

Every retriever answers a batch of queries with ranked hits::

    hits = retriever.search(["who founded the Orlen Institute?"], topk=3)
    hits[0][0].id, hits[0][0].contents, hits[0][0].score

A corpus follows Search-R1's JSONL format: one ``{"id": ..., "contents": ...}`` object per line,
where ``contents`` holds the title on its first line and the text after it.
"""

from __future__ import annotations

import abc
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from agentgym.core import AgentGymError


@dataclass(frozen=True)
class Hit:
    """One retrieved document: its corpus id, its text (title line first) and the retriever's score."""

    id: str
    contents: str
    score: float

    @property
    def title(self) -> str:
        return self.contents.split("\n", 1)[0]

    @property
    def text(self) -> str:
        return self.contents.split("\n", 1)[1] if "\n" in self.contents else ""


class Corpus:
    """Documents as two aligned columns; row ``i`` is the document the indexes call ``i``.

    Ids are unique: hybrid fusion matches documents by id, and a saved corpus is read back only so.
    """

    def __init__(self, ids: Sequence[str], contents: Sequence[str]):
        if len(ids) != len(contents):
            raise ValueError(f"{len(ids)} ids for {len(contents)} documents")
        self.ids = [str(doc_id) for doc_id in ids]
        self.contents = list(contents)
        if len(set(self.ids)) != len(self.ids):
            repeated = next(doc_id for doc_id, count in Counter(self.ids).items() if count > 1)
            raise ValueError(f"the corpus repeats document id {repeated!r}; ids must be unique")

    def __len__(self) -> int:
        return len(self.ids)

    def hit(self, row: int, score: float) -> Hit:
        return Hit(self.ids[row], self.contents[row], float(score))

    @classmethod
    def from_jsonl(cls, path: str | Path) -> Corpus:
        """Reads a Search-R1 corpus: one ``{"id", "contents"}`` object per line (other keys ignored).

        A row without ``id`` gets its position among the rows (from 0, blank lines not counted, as
        Search-R1's own ids count documents); a row without ``contents`` but with
        ``title``/``text`` gets ``title + "\\n" + text``.
        """
        ids, contents = [], []
        path = Path(path)
        try:
            lines = path.open(encoding="utf-8")
        except FileNotFoundError:
            raise AgentGymError(f"corpus file {str(path)!r} does not exist") from None
        with lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    text = row["contents"] if "contents" in row else f"{row['title']}\n{row['text']}"
                except (ValueError, KeyError, TypeError) as error:
                    raise AgentGymError(
                        f"{path}:{number}: expected a JSON object with 'id' and 'contents' "
                        f"(Search-R1 corpus format), got {line[:80]!r} ({error})"
                    ) from None
                ids.append(str(row.get("id", len(ids))))
                contents.append(str(text))
        try:
            return cls(ids, contents)
        except ValueError as error:  # a repeated id: the two columns are aligned here
            raise AgentGymError(
                f"corpus {str(path)!r}: {error} (rows without an id take their position among the rows)"
            ) from None

    def to_jsonl(self, path: str | Path) -> None:
        with Path(path).open("w", encoding="utf-8") as out:
            for doc_id, text in zip(self.ids, self.contents, strict=True):
                out.write(json.dumps({"id": doc_id, "contents": text}, ensure_ascii=False) + "\n")


class Retriever(abc.ABC):
    """Ranks documents of a corpus for a batch of queries.

    ``search`` returns one list per query, best first, of at most ``topk`` hits (fewer when the
    corpus is smaller or, for lexical retrievers, when fewer documents share a term with the query).
    Retrievers are safe to call from several threads at once; local ones also give ``len()``, the
    number of documents they search.
    """

    kind: ClassVar[str]

    @abc.abstractmethod
    def search(self, queries: Sequence[str], topk: int = 3) -> list[list[Hit]]: ...


def check_search_args(queries: Sequence[str], topk: int) -> None:
    """Fails with what was got when a caller passes a bare string, a query that is no string or a
    non-positive ``topk``."""
    if isinstance(queries, str):
        raise TypeError(
            f"queries must be a list of strings, got the string {queries[:60]!r}; wrap it in a list"
        )
    for query in () if isinstance(queries, Iterator) else queries:  # a generator is read once, by search
        if not isinstance(query, str):
            raise TypeError(
                f"queries must be a list of strings, got {type(query).__name__} {query!r:.60} among them"
            )
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
        raise ValueError(f"topk must be a positive integer, got {topk!r}")


class ProgressTask:
    """One bar of a rich progress display, or nothing when progress is disabled."""

    def __init__(self, progress: Progress | None, task_id: object):
        self._progress = progress
        self._task_id = task_id

    def advance(self, amount: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task_id, amount)


@contextmanager
def progress_bar(description: str, total: int, enabled: bool = True) -> Iterator[ProgressTask]:
    """A rich progress bar for index builds; ``advance(n)`` moves it, a no-op when disabled."""
    if not enabled:
        yield ProgressTask(None, None)
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as progress:
        yield ProgressTask(progress, progress.add_task(description, total=total))
