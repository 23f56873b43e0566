"""A small corpus and one shared encoder (loading it takes seconds) for the retrieval tests."""

from __future__ import annotations

import socket

import pytest

from agentgym.tools.retrieval import Corpus

DOCUMENTS = {
    "cat": "Cat\nThe cat sleeps on the warm mat by the fire.",
    "dog": "Dog\nDogs chase balls in the park and bark at strangers.",
    "quint": "Velmora Quint\nVelmora Quint is a chemist born in Tarsh in 1873.",
    "tarsh": "Tarsh\nTarsh is a city in Quenmark, founded in 1602.",
    "bread": "Bread\nBakers knead dough with yeast and bake loaves in an oven.",
    "stars": "Astronomy\nTelescopes reveal distant galaxies and the light of stars.",
    "ships": "Ships\nSailors navigate the ocean by the stars and a compass.",
    "orlen": "Orlen Institute\nOrlen Institute is an organisation based in Tarsh, founded by Velmora Quint.",
}


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    return Corpus(list(DOCUMENTS), list(DOCUMENTS.values()))


def _no_network(*args, **kwargs):
    raise AssertionError(f"the encoder tried to open a network connection: {args}")


@pytest.fixture(scope="session")
def encoder():
    """The bundled all-MiniLM-L6-v2, loaded with every network connection made to fail."""
    from agentgym.tools.retrieval import Encoder

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", _no_network)
        patch.setattr(socket, "create_connection", _no_network)
        return Encoder()
