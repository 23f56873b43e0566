"""On-disk retrieval indexes: a directory with a manifest, the corpus and one folder per retriever.

Example::

    retriever = build_index("corpus.jsonl", "indexes/kb", kind="hybrid")   # progress bars
    retriever = load_index("indexes/kb")                                   # later, or in a server

Layout of an index directory::

    manifest.json   {"format": "agentgym-retrieval-index", "version": 1, "kind": "bm25" | "dense" |
                     "hybrid", "num_docs": N, "corpus": "corpus.jsonl",
                     "components": [{"kind": "bm25", "path": "bm25"}, ...],
                     "fusion": {"method", "weights", "rrf_k", "depth"}}        (hybrid only)
    corpus.jsonl    the documents, one {"id", "contents"} per line; line i is document row i
    bm25/           bm25s's sparse score matrix (*.csc.index.npy), params.index.json,
                    vocab.index.json, and tokenizer.json (our tokeniser settings)
    dense/          faiss.index (faiss.write_index) and encoder.json (the encoder's model, pooling,
                    normalisation, maximum length and prefixes)

The manifest is written last, so a directory without one is not (yet) an index. An encoder
recorded by its alias (``all-MiniLM-L6-v2``) loads on any machine where the bundled package is
installed; one recorded by path needs that path, or ``encoder=`` at load time.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agentgym.core import AgentGymError
from agentgym.tools.retrieval.base import Corpus, Retriever
from agentgym.tools.retrieval.bm25 import BM25Retriever

if TYPE_CHECKING:  # the dense stack (torch, faiss) is imported only when a dense index is used
    from agentgym.tools.retrieval.encoder import Encoder

MANIFEST = "manifest.json"
CORPUS_FILE = "corpus.jsonl"
FORMAT = "agentgym-retrieval-index"
VERSION = 1
IndexKind = Literal["bm25", "dense", "hybrid"]
KINDS = ("bm25", "dense", "hybrid")


def is_index(directory: str | Path) -> bool:
    return (Path(directory) / MANIFEST).is_file()


def build_index(
    corpus: Corpus | str | Path,
    directory: str | Path | None = None,
    kind: IndexKind = "bm25",
    *,
    encoder: Encoder | str | None = None,
    factory: str = "Flat",
    fusion: dict[str, Any] | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Retriever:
    """Builds a ``kind`` retriever over ``corpus`` (a :class:`Corpus` or a Search-R1 JSONL path).

    ``encoder`` (dense and hybrid) is an :class:`Encoder` or a model directory/alias
    (default ``all-MiniLM-L6-v2``); ``factory`` is the faiss index type; ``fusion`` holds
    :class:`HybridRetriever` options (``method``, ``weights``, ``rrf_k``, ``depth``). With
    ``directory`` the index is also written there (refused over an existing index unless
    ``overwrite``).
    """
    if kind not in KINDS:
        raise AgentGymError(f"unknown index kind {kind!r}; use one of {', '.join(KINDS)}")
    if directory is not None and is_index(directory) and not overwrite:
        raise AgentGymError(f"{directory} already holds an index; pass overwrite=True to replace it")
    if not isinstance(corpus, Corpus):
        corpus = Corpus.from_jsonl(corpus)
    if len(corpus) == 0:
        raise AgentGymError("the corpus is empty: there is nothing to index")
    dense = _dense_module() if kind in ("dense", "hybrid") else None
    if kind == "hybrid":  # options that cannot be fused fail now, not once both components are built
        from agentgym.tools.retrieval.hybrid import check_fusion

        check_fusion(2, fusion or {})
    if dense is not None:  # an encoder that cannot load fails before the BM25 build
        from agentgym.tools.retrieval.encoder import DEFAULT_ENCODER, Encoder

        if not isinstance(encoder, Encoder):
            encoder = Encoder(encoder or DEFAULT_ENCODER)
        dense.new_index(encoder.dim, factory)  # so is a factory string faiss cannot read
    if directory is not None:
        make_index_directory(directory)  # before the build, which can take hours, not after it
    components: list[Retriever] = []
    if kind in ("bm25", "hybrid"):
        components.append(BM25Retriever.build(corpus, progress=progress))
    if dense is not None:
        components.append(
            dense.DenseRetriever.build(
                corpus, encoder, factory=factory, batch_size=batch_size, progress=progress
            )
        )
    retriever = components[0]
    if kind == "hybrid":
        from agentgym.tools.retrieval.hybrid import HybridRetriever

        retriever = HybridRetriever(components, **(fusion or {}))
    if directory is not None:
        save_index(retriever, directory)
    return retriever


def _dense_module() -> Any:
    """The dense retriever's module; without faiss (the ``retrieval`` extra), an error saying so."""
    try:
        return importlib.import_module("agentgym.tools.retrieval.dense")
    except ImportError as error:
        if error.name != "faiss":
            raise
        raise AgentGymError("dense retrieval needs faiss: pip install 'agentgym[retrieval]'") from None


def make_index_directory(directory: str | Path) -> None:
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise AgentGymError(f"cannot write an index to {str(directory)!r}: it is a file, not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # no permission, a read-only disk, a file on the way
        raise AgentGymError(
            f"cannot write an index to {str(directory)!r}: {error.strerror or error}"
        ) from None


def _components(retriever: Retriever) -> list[Retriever]:
    return list(getattr(retriever, "retrievers", [retriever]))


def save_index(retriever: Retriever, directory: str | Path) -> None:
    """Writes a BM25, dense or hybrid retriever in the layout above (manifest last)."""
    directory = Path(directory)
    components = _components(retriever)
    unsupported = [type(c).__name__ for c in components if not hasattr(c, "save") or not hasattr(c, "corpus")]
    if unsupported:
        raise TypeError(f"{', '.join(unsupported)} cannot be saved as an index")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MANIFEST).unlink(missing_ok=True)
    components[0].corpus.to_jsonl(directory / CORPUS_FILE)
    entries = []
    kinds = [c.kind for c in components]
    for number, component in enumerate(components):
        path = component.kind if kinds.count(component.kind) == 1 else f"{component.kind}{number}"
        component.save(directory / path)
        entries.append({"kind": component.kind, "path": path})
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "kind": retriever.kind,
        "num_docs": len(retriever),
        "corpus": CORPUS_FILE,
        "components": entries,
    }
    if retriever.kind == "hybrid":
        manifest["fusion"] = retriever.fusion_settings()
    partial = directory / (MANIFEST + ".partial")
    partial.write_text(json.dumps(manifest, indent=1))
    os.replace(partial, directory / MANIFEST)


def read_manifest(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise AgentGymError(
            f"{directory} is not a retrieval index (no {MANIFEST}); build one with "
            "`agentgym serve retriever --corpus corpus.jsonl --index DIR --build-only` or build_index()"
        )
    try:  # manifest.json is a common name: another tool's file there is no index of ours
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise AgentGymError(
            f"{path} is not a version-{VERSION} {FORMAT} manifest (not JSON: {error})"
        ) from None
    if not isinstance(manifest, dict):
        raise AgentGymError(
            f"{path} is not a version-{VERSION} {FORMAT} manifest (a JSON {type(manifest).__name__})"
        )
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise AgentGymError(
            f"{path} is not a version-{VERSION} {FORMAT} manifest "
            f"(format {manifest.get('format')!r}, version {manifest.get('version')!r})"
        )
    return manifest


def load_index(
    directory: str | Path, *, encoder: Encoder | None = None, device: str = "cpu", mmap: bool = False
) -> Retriever:
    """Loads an index written by :func:`build_index`/:func:`save_index`.

    Dense components rebuild their recorded encoder on ``device`` unless ``encoder`` replaces it;
    ``mmap`` maps the large arrays instead of reading them into memory.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    corpus = Corpus.from_jsonl(directory / manifest["corpus"])
    components: list[Retriever] = []
    for entry in manifest["components"]:
        path = directory / entry["path"]
        if entry["kind"] == "bm25":
            components.append(BM25Retriever.load(path, corpus, mmap=mmap))
        elif entry["kind"] == "dense":
            components.append(
                _dense_module().DenseRetriever.load(path, corpus, encoder=encoder, device=device, mmap=mmap)
            )
        else:
            raise AgentGymError(f"{directory}: unknown component kind {entry['kind']!r}")
    if manifest["kind"] == "hybrid":
        from agentgym.tools.retrieval.hybrid import HybridRetriever

        return HybridRetriever(components, **manifest["fusion"])
    return components[0]
