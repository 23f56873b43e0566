"""Loads the original WebShop data files and builds its goals in the original order.

Expected files in ``data_dir`` (the names of the original's ``data/`` folder):

==============================  ===================================================================
``items_shuffle_1000.json``     products (JSON array), the original's default 1,000-product subset
``items_ins_v2_1000.json``      asin -> ``{"attributes", "instruction", "instruction_attributes"}``
``items_shuffle.json``          the full product set (about 1.18 M), used with ``subset="full"``
``items_ins_v2.json``           its attribute / synthetic-instruction file
``items_human_ins.json``        asin -> list of human instructions (needed for ``goals="human"``)
==============================  ===================================================================

Products are cleaned as the original loader does: records whose asin is ``"nan"`` or longer than
10 characters are skipped, as are repeated asins (the first is kept); ``pricing`` is split on
``$`` into at most two numbers (``Price`` = ``"$14.99"`` or ``"$21.5 to $24.0"``, a missing price is
``$100.0``); option names and values are lower-cased and ``/`` becomes `` | `` in values; missing
attributes become ``["DUMMY_ATTR"]`` (an empty list stays empty); the scrape query is lower-cased
and stripped.

Goals are built in the original's order (products in file order; for human goals each product's
instructions in list order, skipping those without ``instruction_attributes``; for synthetic goals
one goal per combination of option values, names sorted), then shuffled with ``random.seed(233)``
exactly as the original, so goal ``i`` here is the original's goal index ``i``.

The original draws the sampled price of price ranges and every goal's price ceiling from Python's
global, unseeded ``random``; here those draws come from ``random.Random(seed)`` in the same order
(range prices at load, then ceilings goal by goal), so they are reproducible. With ``seed=s`` the
values equal the original's after ``random.seed(s)`` right before it loads its products.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from agentgym.core import AgentGymError
from agentgym.environments.webshop.data import Goal, Product
from agentgym.environments.webshop.generator import price_ceiling, price_text

GOAL_SHUFFLE_SEED = 233
MAX_ASIN_LENGTH = 10
DEFAULT_PRICE = 100.0

GoalKind = Literal["human", "synthetic"]
Subset = Literal["auto", "1000", "full"]

_NOT_PRICE = re.compile(r"[^\d.]")


def data_files(data_dir: str | Path, subset: Subset = "auto") -> tuple[Path, Path, Path]:
    """(products, attributes, human instructions) paths; ``auto`` prefers each 1,000-product file."""
    root = Path(data_dir)
    small = (root / "items_shuffle_1000.json", root / "items_ins_v2_1000.json")
    full = (root / "items_shuffle.json", root / "items_ins_v2.json")
    if subset == "auto":
        # Each file: the 1,000-product one when present, else the full one.
        products, attributes = (a if a.exists() else b for a, b in zip(small, full, strict=True))
    elif subset in ("1000", "full"):
        products, attributes = small if subset == "1000" else full
    else:
        raise AgentGymError(f"webshop: subset={subset!r}; use 'auto', '1000' or 'full'")
    for path in (products, attributes):
        if not path.exists():
            raise AgentGymError(
                f"webshop: {path} is missing; data_dir needs the original WebShop files "
                "(items_shuffle_1000.json + items_ins_v2_1000.json, or items_shuffle.json + items_ins_v2.json, "
                "and items_human_ins.json for human goals)"
            )
    return products, attributes, root / "items_human_ins.json"


def parse_pricing(pricing: str | None) -> tuple[list[float], str]:
    """The original's price cleaning: ``"$21.50 - $24.00"`` -> ``([21.5, 24.0], "$21.5 to $24.0")``.

    A piece without digits (which the original cannot parse) is skipped.
    """
    pieces = [_NOT_PRICE.sub("", piece) for piece in (pricing or "").split("$")[1:]]
    values = [float(Decimal(piece)) for piece in pieces if piece.strip(".")]
    if not values:
        return [DEFAULT_PRICE], f"${DEFAULT_PRICE}"
    if len(values) == 1:
        return values, f"${values[0]}"
    return values[:2], f"${values[0]} to ${values[1]}"


def clean_options(customization_options: dict[str, Any] | None) -> dict[str, tuple[str, ...]]:
    options: dict[str, tuple[str, ...]] = {}
    for name, contents in (customization_options or {}).items():
        if contents is None:
            continue
        options[name.lower()] = tuple(
            content["value"].strip().replace("/", " | ").lower() for content in contents
        )
    return options


def _read_json(path: Path, kind: type, shape: str) -> Any:
    """The JSON value of ``path``, which must be a ``kind`` (``list`` or ``dict``) as ``shape`` says."""
    try:
        with path.open(encoding="utf-8") as handle:
            value = json.load(handle)
    except ValueError as error:
        # A failed download (an HTML page saved under the file's name) is the usual cause.
        raise AgentGymError(f"webshop: {path} is not valid JSON ({error}); download it again") from None
    if not isinstance(value, kind):
        raise AgentGymError(f"webshop: {path} should hold {shape}, not a JSON {type(value).__name__}")
    return value


def load_real_catalogue(
    data_dir: str | Path, goals: GoalKind = "human", subset: Subset = "auto", seed: int = 0
) -> tuple[list[Product], list[Goal]]:
    """The products (in file order, cleaned) and the goals (in the original's shuffled order)."""
    if goals not in ("human", "synthetic"):
        raise AgentGymError(f"webshop: goals={goals!r}; use 'human' or 'synthetic'")
    products_path, attributes_path, human_path = data_files(data_dir, subset)
    if goals == "human" and not human_path.exists():
        raise AgentGymError(f"webshop: goals='human' needs {human_path}")
    records = _read_json(products_path, list, "an array of product objects")
    item_attributes: dict[str, Any] = _read_json(attributes_path, dict, "an object keyed by asin")
    human = _read_json(human_path, dict, "an object keyed by asin") if goals == "human" else {}

    rng = random.Random(seed)
    products: list[Product] = []
    pricings: list[list[float]] = []
    instructions: list[Any] = []
    seen: set[str] = set()
    for record in records:
        asin = record["asin"]
        if asin == "nan" or len(asin) > MAX_ASIN_LENGTH or asin in seen:
            continue
        seen.add(asin)
        bullets = record.get("small_description") or []
        if isinstance(bullets, str):
            bullets = [bullets]
        pricing, price_tag = parse_pricing(record.get("pricing"))
        extra = item_attributes.get(asin) or {}
        products.append(
            Product(
                asin=asin,
                title=record.get("name") or "",
                description=record.get("full_description") or "",
                bullet_points=tuple(bullets),
                price=pricing[0],  # replaced below once ranges are drawn
                price_tag=price_tag,
                options=clean_options(record.get("customization_options")),
                attributes=_product_attributes(extra),
                category=record.get("category") or "",
                query=(record.get("query") or "").lower().strip(),
                product_category=record.get("product_category") or "",
            )
        )
        pricings.append(pricing)
        instructions.append(human.get(asin) if goals == "human" else extra)

    # The sampled prices: drawn after loading, product by product, only for ranges.
    prices = [pricing[0] if len(pricing) == 1 else rng.uniform(*pricing[:2]) for pricing in pricings]
    products = [
        dataclasses.replace(product, price=price) for product, price in zip(products, prices, strict=True)
    ]
    build = _human_goals if goals == "human" else _synthetic_goals
    built = build(products, instructions, rng)
    random.Random(GOAL_SHUFFLE_SEED).shuffle(built)
    return products, built


def _product_attributes(extra: dict[str, Any]) -> tuple[str, ...]:
    """The product's ``Attributes``: its list in the attribute file, even an empty one, as the original;
    ``["DUMMY_ATTR"]`` when it has none (a null list, which the original cannot use, counts as none)."""
    attributes = extra.get("attributes")
    return ("DUMMY_ATTR",) if attributes is None else tuple(attributes)


def _goal_fields(product: Product) -> dict[str, Any]:
    return {
        "asin": product.asin,
        "name": product.title,
        "query": product.query,
        "category": product.category,
        "product_category": product.product_category,
    }


def _human_goals(products: list[Product], instructions: list[Any], rng: random.Random) -> list[Goal]:
    goals = []
    for product, records in zip(products, instructions, strict=True):
        for record in records or ():
            attributes = record.get("instruction_attributes") or []
            if not attributes:
                continue
            price_upper = price_ceiling(product.price, rng)
            goals.append(
                Goal(
                    instruction_text=record["instruction"].strip(".") + price_text(price_upper),
                    attributes=tuple(attributes),
                    goal_options=tuple(record.get("instruction_options") or ()),
                    price_upper=price_upper,
                    **_goal_fields(product),
                )
            )
    return goals


def _synthetic_goals(products: list[Product], instructions: list[Any], rng: random.Random) -> list[Goal]:
    goals = []
    for product, extra in zip(products, instructions, strict=True):
        instruction = extra.get("instruction")
        if instruction is None:
            continue
        attributes = tuple(extra.get("instruction_attributes") or ())
        if not attributes:
            raise AgentGymError(
                f"webshop: product {product.asin} has a synthetic instruction without attributes"
            )
        price_upper = price_ceiling(product.price, rng)
        names = sorted(product.options)
        for combination in itertools.product(*(product.options[name] for name in names)):
            goal_options = dict(zip(names, combination, strict=True))
            option_text = ", and ".join(f"{name}: {value}" for name, value in goal_options.items())
            option_text = f" with {option_text}" if option_text else ""
            goals.append(
                Goal(
                    instruction_text=f"{instruction}{option_text}{price_text(price_upper)}",
                    attributes=attributes,
                    goal_options=goal_options,
                    price_upper=price_upper,
                    **_goal_fields(product),
                )
            )
    counts = Counter(attribute for goal in goals for attribute in goal.attributes)
    return [
        dataclasses.replace(goal, weight=sum(1.0 / counts[a] for a in goal.attributes) / len(goal.attributes))
        for goal in goals
    ]
