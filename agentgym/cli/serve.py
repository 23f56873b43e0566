"""``agentgym serve``: long-running servers, a retrieval index (``retriever``) or an environment (``env``).

Examples::

    # build an index from a Search-R1 corpus (once), then serve it
    agentgym serve retriever --index indexes/wiki --corpus wiki-18.jsonl --kind bm25 --port 8000
    # build only
    agentgym serve retriever --index indexes/wiki --corpus wiki-18.jsonl --kind hybrid --build-only
    # serve an existing index
    agentgym serve retriever --index indexes/wiki --port 8000

    # serve an environment, one instance per session, for agentgym.make("remote", url=...)
    agentgym serve env --env webshop catalogue=small --host 0.0.0.0 --port 8001
    # either server, only to clients that send the key (they read $AGENTGYM_API_KEY too)
    AGENTGYM_API_KEY=$(openssl rand -hex 16) agentgym serve env --env webshop --host 0.0.0.0

The retriever speaks Search-R1's protocol (``POST /retrieve``; see agentgym.tools.retrieval.server),
the environment server its own (see agentgym.tools.env_server).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from agentgym.cli.app import app, console
from agentgym.config import parse_overrides
from agentgym.core import AgentGymError
from agentgym.tools.servers import server_api_key

serve_app = typer.Typer(
    help="Run a server: a retrieval index or an environment over HTTP.", no_args_is_help=True
)
app.add_typer(serve_app, name="serve")


def retrieval_server(default_topk: int) -> Callable[..., None]:
    """The retrieval server's ``serve``, once it is known to be installed and to accept ``default_topk``."""
    try:
        from agentgym.tools.retrieval.server import MAX_TOPK, serve
    except ImportError as error:
        raise AgentGymError(
            f"serving needs fastapi and uvicorn ({error}): pip install 'agentgym[server]'"
        ) from None
    if default_topk > MAX_TOPK:
        raise AgentGymError(
            f"--topk {default_topk} exceeds the server's limit of {MAX_TOPK} documents per query"
        )
    return serve


@serve_app.command("retriever")
def serve_retriever(
    index: Path = typer.Option(..., help="index directory (built there from --corpus if it holds none)"),
    corpus: Path = typer.Option(None, help="Search-R1 corpus JSONL ({id, contents} per line) to build from"),
    kind: str = typer.Option(None, help="index to build: bm25 (the default), dense or hybrid"),
    encoder: str = typer.Option(
        None,
        help="dense/hybrid: a local model directory or the bundled all-MiniLM-L6-v2 (the default)",
    ),
    device: str = typer.Option("cpu", help="dense/hybrid: torch device of the encoder (cpu, cuda)"),
    host: str = typer.Option("127.0.0.1", help="interface to listen on (0.0.0.0 for every interface)"),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port"),
    topk: int = typer.Option(3, min=1, help="documents per query when a request gives no topk"),
    build_only: bool = typer.Option(False, "--build-only", help="build the index and exit"),
    api_key: str = typer.Option(
        None,
        envvar="AGENTGYM_API_KEY",
        show_envvar=True,
        help="serve only requests that send 'Authorization: Bearer <key>' (GET /health excepted)",
    ),
) -> None:
    """Serve a retrieval index with Search-R1's /retrieve protocol, building it first if needed."""
    from agentgym.tools.retrieval import Encoder, build_index, is_index, load_index
    from agentgym.tools.retrieval.encoder import DEFAULT_ENCODER

    # Checked before the index is built, which can take hours, rather than once it is.
    serve = None if build_only else retrieval_server(topk)
    if serve is not None:
        server_api_key(api_key)

    if is_index(index):
        # A saved index is served as it was built: build options given again change nothing.
        ignored = [
            flag for flag, value in (("--corpus", corpus), ("--kind", kind), ("--encoder", encoder)) if value
        ]
        if ignored:
            console.print(f"[yellow]{index} already holds an index; {', '.join(ignored)} not used[/]")
        retriever = load_index(index, device=device)
    elif corpus is None:
        raise AgentGymError(f"{index} holds no index; pass --corpus corpus.jsonl to build one there")
    else:
        kind = kind or "bm25"
        console.print(f"building a {kind} index of {corpus} in {index}")
        dense = kind in ("dense", "hybrid")
        retriever = build_index(
            corpus, index, kind, encoder=Encoder(encoder or DEFAULT_ENCODER, device=device) if dense else None
        )
    console.print(f"{retriever.kind} index of {len(retriever)} documents ready in {index}")
    if serve is None:  # --build-only
        return
    console.print(f"serving on http://{host}:{port}/retrieve (Ctrl-C to stop)")
    serve(retriever, host=host, port=port, default_topk=topk, api_key=api_key)


@serve_app.command("env")
def serve_env(
    env: str = typer.Option(..., "--env", help="environment id, e.g. webshop"),
    options: list[str] = typer.Argument(None, help="environment options as key=value"),
    host: str = typer.Option("127.0.0.1", help="interface to listen on (0.0.0.0 for every interface)"),
    port: int = typer.Option(8001, min=1, max=65535, help="TCP port"),
    max_sessions: int = typer.Option(256, min=1, help="environment instances served at once"),
    api_key: str = typer.Option(
        None,
        envvar="AGENTGYM_API_KEY",
        show_envvar=True,
        help="serve only requests that send 'Authorization: Bearer <key>' (GET /health excepted)",
    ),
) -> None:
    """Serve an environment over HTTP, one instance per session (agentgym.make("remote", url=...))."""
    try:
        from agentgym.tools.env_server import serve
    except ImportError as error:
        raise AgentGymError(
            f"serving needs fastapi and uvicorn ({error}): pip install 'agentgym[server]'"
        ) from None

    env_kwargs = parse_overrides(options)
    console.print(f"serving {env} on http://{host}:{port} (Ctrl-C to stop)")
    serve(env, env_kwargs, host=host, port=port, max_sessions=max_sessions, api_key=api_key)
