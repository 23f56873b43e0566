"""Command-line types shared by the benchmark scripts (each script runs from this folder, so a plain
``from arguments import at_least`` finds this module)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def at_least(minimum: int) -> Callable[[str], int]:
    """argparse type: an int of at least ``minimum`` (a count of zero would leave nothing to measure)."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def between(minimum: int, maximum: int, why: str) -> Callable[[str], int]:
    """argparse type: an int from ``minimum`` to ``maximum``; ``why`` says what the maximum is."""
    lowest = at_least(minimum)

    def parse(text: str) -> int:
        value = lowest(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {value}: {why}")
        return value

    return parse
