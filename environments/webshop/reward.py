"""WebShop's purchase reward, as pure functions over a goal and a purchased product.

For a goal with attributes ``A``, options ``O`` and price ceiling ``price_upper``, buying product
``p`` at price ``price`` with the chosen option values ``V`` earns::

    reward = r_type * (n_att + n_opt + r_price) / (len(A) + len(O) + 1)

- ``n_att``: goal attributes ``a`` matched by the product: some product attribute ``x`` has
  ``fuzzy_match(x, a)``, else ``a`` is a plain substring of the lower-cased title, of the joined
  bullet points or of the description (``a`` itself is not lower-cased).
- ``n_opt``: goal options ``g`` for which some chosen value ``v`` has
  ``fuzzy_match(normalize_color(v), normalize_color(g))``; option names play no part. A goal
  given as a ``{name: value}`` dict (the original's synthetic goals) compares ``(name, value)``
  tuples, so the matcher sees ``"('color', 'navy blue')"``.
- ``r_price``: ``price <= price_upper`` (1 or 0).
- ``r_type``: the product-type agreement of :func:`type_reward` (1.0, 0.5, 0.1 or 0.0).

``fuzzy_match(x, y)`` is ``token_set_ratio(x, y) > 85`` as the original's pinned thefuzz 0.19.0
computes it without python-Levenshtein (which its requirements do not install): the preprocessing
(``str()``, code points 128-255 dropped, non-word characters to spaces, lower case), then
difflib's ``SequenceMatcher`` ratio, rounded. That can score below the indel similarity of
python-Levenshtein, rapidfuzz and thefuzz >= 0.20 (``coconut`` / ``ccopnut``: 71, not 86), and
depends on the argument order, which follows the original (product or chosen value first, goal
second).

The title score of the type reward counts shared nouns of the two product names. The original
tags them with spaCy (``NOUN``/``PROPN``); agentgym uses :func:`title_nouns`, a deterministic
stand-in without a language model: the alphabetic tokens of the name minus function words and
common title adjectives. It agrees with spaCy on the nouns that product names are made of
(``shampoo``, ``chair``, ``tea``, ``bags``), and may differ on words spaCy tags otherwise.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
from collections.abc import Iterable, Mapping, Sequence

from agentgym.environments.webshop.data import Goal, Product

MATCH_THRESHOLD = 85
"""A fuzzy score strictly above this is a match."""

COLORS = (
    "alabaster", "apricot", "aqua", "ash", "asphalt", "azure", "banana", "beige", "black", "blue",
    "blush", "bordeaux", "bronze", "brown", "burgundy", "camel", "camo", "caramel", "champagne",
    "charcoal", "cheetah", "chestnut", "chocolate", "christmas", "coffee", "cognac", "copper", "coral",
    "cranberry", "cream", "crystal", "dark", "denim", "eggplant", "elephant", "espresso", "fuchsia",
    "gold", "granite", "grape", "graphite", "grass", "gray", "green", "grey", "heather", "indigo",
    "ivory", "ivy", "khaki", "lavender", "lemon", "leopard", "light", "lilac", "lime", "magenta",
    "maroon", "mauve", "merlot", "midnight", "mint", "mocha", "multicolor", "mushroom", "mustard",
    "natural", "navy", "nude", "olive", "orange", "peach", "pewter", "pink", "plum", "purple",
    "rainbow", "red", "rose", "royal", "rust", "sand", "sapphire", "seashell", "silver", "skull",
    "slate", "steel", "stone", "stonewash", "sunflower", "tan", "taupe", "teal", "tiger", "turquoise",
    "violet", "walnut", "wheat", "white", "wine", "yellow",
)  # fmt: skip
"""The original's colour vocabulary, sorted: option values are reduced to the first word found."""

# thefuzz's preprocessing: drop code points 128-255 (its force_ascii), then non-word characters.
_LATIN1 = {code: None for code in range(128, 256)}
_NON_WORD = re.compile(r"(?ui)\W")

# Closed-class words and the adjectives product names are full of: never nouns in a title.
_NOT_NOUNS = frozenset({
    "a", "an", "the", "and", "or", "nor", "but", "for", "with", "without", "of", "in", "on", "at", "to",
    "from", "by", "into", "onto", "over", "under", "about", "as", "per", "plus", "via", "vs", "than",
    "then", "this", "that", "these", "those", "it", "its", "our", "your", "my", "his", "her", "their", "he",
    "she", "we", "you", "they", "them", "is", "are", "be", "been", "was", "were", "will", "can", "may",
    "must", "should", "would", "could", "not", "no", "all", "any", "each", "both", "every", "other",
    "another", "some", "such", "own", "same", "so", "too", "very", "just", "only", "also", "up", "down",
    "off", "out", "new", "extra", "small", "large", "big", "mini", "little", "long", "short", "high", "low",
    "tall", "wide", "narrow", "thin", "thick", "slim", "light", "heavy", "soft", "hard", "smooth", "rough",
    "warm", "cool", "cold", "hot", "dry", "wet", "fresh", "pure", "natural", "organic", "free", "premium",
    "classic", "modern", "vintage", "original", "professional", "portable", "adjustable", "durable",
    "comfortable", "lightweight", "waterproof", "wireless", "compatible", "reusable", "disposable", "easy",
    "simple", "super", "ultra", "best", "great", "good", "perfect", "real", "non", "anti", "multi", "full",
    "half", "double", "single", "triple", "electric", "digital", "automatic", "manual", "cute", "elegant",
    "casual", "formal", "sweet", "spicy", "healthy", "gentle", "strong"
})  # fmt: skip

_WORD = re.compile(r"[a-z]+")


def _thefuzz_process(value: object) -> str:
    text = str(value).translate(_LATIN1)
    return _NON_WORD.sub(" ", text).lower().strip()


def _ratio(a: str, b: str) -> int:
    """thefuzz 0.19's ``ratio`` without python-Levenshtein: difflib's similarity, rounded."""
    if a == b:
        return 100
    if not a or not b:
        return 0
    return round(100 * difflib.SequenceMatcher(None, a, b).ratio())


def fuzzy_score(x: object, y: object) -> int:
    """thefuzz 0.19's ``token_set_ratio(x, y)``: 0-100, 100 when one token set contains the other."""
    return _token_set_ratio(_thefuzz_process(x), _thefuzz_process(y))


@functools.lru_cache(maxsize=65536)  # difflib is slow, and rewards and the expert repeat their pairs
def _token_set_ratio(a: str, b: str) -> int:
    if not a or not b:
        return 0
    tokens_a, tokens_b = set(a.split()), set(b.split())
    common = " ".join(sorted(tokens_a & tokens_b))
    with_a = f"{common} {' '.join(sorted(tokens_a - tokens_b))}".strip()
    with_b = f"{common} {' '.join(sorted(tokens_b - tokens_a))}".strip()
    return max(_ratio(common, with_a), _ratio(common, with_b), _ratio(with_a, with_b))


def fuzzy_match(x: object, y: object) -> bool:
    return fuzzy_score(x, y) > MATCH_THRESHOLD


def normalize_color(value: str | tuple[str, str]) -> str | tuple[str, str]:
    """The first colour word of :data:`COLORS` that ``value`` contains, else ``value`` unchanged.

    For a string this is a substring test (``"navy blue"`` -> ``"blue"``, ``"standard"`` ->
    ``"tan"``); for a ``(name, value)`` tuple it is element equality, as in the original.
    """
    for color in COLORS:
        if color in value:
            return color
    return value


def attribute_matches(goal_attributes: Iterable[str], product: Product) -> int:
    """``n_att``: how many goal attributes the product has (fuzzy, else as a substring of its text)."""
    title = product.title.lower()
    bullets = " ".join(product.bullet_points).lower()
    description = product.description.lower()
    matched = 0
    for attribute in goal_attributes:
        if any(fuzzy_match(own, attribute) for own in product.attributes) or (
            attribute in title or attribute in bullets or attribute in description
        ):
            matched += 1
    return matched


def goal_option_items(goal_options: Sequence[str] | Mapping[str, str]) -> list[str | tuple[str, str]]:
    """The goal's options as the reward compares them: values, or ``(name, value)`` for a dict."""
    if isinstance(goal_options, Mapping):
        return list(goal_options.items())
    return list(goal_options)


def option_matches(goal_options: Sequence[str] | Mapping[str, str], chosen_values: Iterable[str]) -> int:
    """``n_opt``: goal options matched by at least one chosen value (one value may match several)."""
    chosen = [normalize_color(value) for value in chosen_values]
    matched = 0
    for goal_option in goal_option_items(goal_options):
        wanted = normalize_color(goal_option)
        if any(fuzzy_match(value, wanted) for value in chosen):
            matched += 1
    return matched


def title_nouns(name: str) -> list[str]:
    """The nouns of a product name, lower-cased, in order and with repeats (spaCy's stand-in)."""
    return [word for word in _WORD.findall(name.lower()) if len(word) > 1 and word not in _NOT_NOUNS]


@dataclasses.dataclass(frozen=True)
class TypeReward:
    r_type: float
    query_match: bool
    category_match: bool
    title_score: float


def type_reward(goal: Goal, product: Product) -> TypeReward:
    """Whether the purchase is the kind of product the goal asks for.

    ``query_match``: equal scrape queries; ``category_match``: the ``›``-separated category paths
    share at least two parts; ``title_score``: the share of the goal name's nouns (repeats
    counted) that occur in the product name, 0.2 when the goal name has none. Then, in order:
    ``title_score == 0`` gives 0.0, ``< 0.1`` gives 0.1, any of the two matches or
    ``title_score > 0.2`` gives 1.0, and otherwise 0.5.
    """
    query_match = product.query == goal.query
    goal_parts = {part.strip() for part in goal.product_category.split("›")}
    product_parts = {part.strip() for part in product.product_category.split("›")}
    category_match = len(goal_parts & product_parts) >= 2
    wanted = title_nouns(goal.name)
    have = set(title_nouns(product.title))
    title_score = sum(1 for noun in set(wanted) if noun in have) / len(wanted) if wanted else 0.2
    if title_score == 0.0:
        r_type = 0.0
    elif title_score < 0.1:
        r_type = 0.1
    elif query_match or category_match or title_score > 0.2:
        r_type = 1.0
    else:
        r_type = 0.5
    return TypeReward(r_type, query_match, category_match, title_score)


@dataclasses.dataclass(frozen=True)
class RewardBreakdown:
    reward: float
    r_type: float
    n_att: int
    n_opt: int
    r_price: bool
    num_attributes: int
    num_options: int
    query_match: bool
    category_match: bool
    title_score: float

    def as_dict(self) -> dict[str, float | int | bool]:
        return dataclasses.asdict(self)


def purchase_reward(
    goal: Goal, product: Product, options: Mapping[str, str], price: float | None = None
) -> RewardBreakdown:
    """The reward of buying ``product`` with ``options`` (name -> chosen value) for ``goal``.

    ``price`` defaults to the product's sampled price, the one the original compares.
    """
    kind = type_reward(goal, product)
    paid = product.price if price is None else price
    n_att = attribute_matches(goal.attributes, product)
    n_opt = option_matches(goal.goal_options, options.values())
    r_price = paid <= goal.price_upper
    num_options = len(goal.goal_options)
    fraction = (n_att + n_opt + int(r_price)) / (len(goal.attributes) + num_options + 1)
    return RewardBreakdown(
        reward=kind.r_type * fraction,
        r_type=kind.r_type,
        n_att=n_att,
        n_opt=n_opt,
        r_price=r_price,
        num_attributes=len(goal.attributes),
        num_options=num_options,
        query_match=kind.query_match,
        category_match=kind.category_match,
        title_score=kind.title_score,
    )
