"""The records a WebShop site is made of: products, their reviews, and shopping goals.

Field names follow the original site's loaded product dicts (``Title``, ``Description``,
``BulletPoints``, ``Price``, ``options``, ``Attributes``, ...) in snake case. A product carries two
prices, as the original does: ``price_tag`` is the text the pages show (``"$14.99"`` or
``"$21.5 to $24.0"``) and ``price`` is the single number the reward compares with the goal's ceiling
(for a price range, one uniform draw inside it, made once when the catalogue is built).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

NO_PRICE_LIMIT = 1_000_000.0
"""The original's ``price_upper`` for goals whose product costs 980 dollars or more (no price text)."""


@dataclass(frozen=True)
class Review:
    title: str
    score: int
    body: str


@dataclass(frozen=True, eq=False)
class Product:
    asin: str
    title: str
    description: str
    bullet_points: tuple[str, ...]
    price: float
    price_tag: str
    options: Mapping[str, tuple[str, ...]]
    """Option group name -> its values, both lower-cased, in the order the item page shows them."""
    attributes: tuple[str, ...]
    category: str = ""
    query: str = ""
    product_category: str = ""
    reviews: tuple[Review, ...] = ()
    rating: str = "N.A."

    def search_text(self) -> str:
        """The document the search engine indexes, built as the original's index converter does."""
        option_text = ", and ".join(f"{name}: {', '.join(values)}" for name, values in self.options.items())
        first_bullet = self.bullet_points[0] if self.bullet_points else ""
        return " ".join([self.title, self.description, first_bullet, option_text]).lower()


@dataclass(frozen=True, eq=False)
class Goal:
    """One shopping task: the instruction and what the reward checks the purchase against.

    ``goal_options`` is a tuple of option values for human-written goals (and the generated ones),
    or a ``{name: value}`` dict for the original's synthetic goals, whose reward compares
    ``(name, value)`` pairs; :mod:`.reward` handles both exactly as the original does.
    """

    asin: str
    instruction_text: str
    attributes: tuple[str, ...]
    goal_options: tuple[str, ...] | Mapping[str, str]
    price_upper: float
    name: str
    query: str
    category: str = ""
    product_category: str = ""
    weight: float = 1.0
