from __future__ import annotations

import pytest

from agentgym.environments.webshop.data import Product
from agentgym.environments.webshop.search import SearchEngine, analyze, minimal_stem


@pytest.mark.parametrize(
    ("word", "stem"),
    [
        ("bags", "bag"),
        ("berries", "berry"),  # -ies -> -y
        ("series", "sery"),  # Lucene's minimal stemmer does the same
        ("shoes", "shoes"),  # -oes is kept
        ("glass", "glass"),  # -ss is kept
        ("status", "status"),  # -us is kept
        ("as", "as"),  # too short
        ("chairs", "chair"),
    ],
)
def test_minimal_stem(word, stem):
    assert minimal_stem(word) == stem


def test_analyze_drops_stop_words_and_folds_plurals():
    assert analyze("The Tea-Bags for DRY hair, 16.9 oz") == ["tea", "bag", "dry", "hair", "16", "9", "oz"]


def test_search_text_is_built_like_the_original_index():
    product = Product(
        asin="B0X",
        title="Mint Shampoo",
        description="Gentle.",
        bullet_points=("First bullet", "Second bullet"),
        price=1.0,
        price_tag="$1.0",
        options={"size": ("8 oz", "16 oz"), "scent": ("mint",)},
        attributes=(),
    )
    assert product.search_text() == "mint shampoo gentle. first bullet size: 8 oz, 16 oz, and scent: mint"


DOCS = [
    "red shampoo for dry hair",
    "blue tea bags",
    "green tea",
    "shampoos",
    "lamp",
    "tea",
]


def test_search_ranks_matching_documents_only():
    engine = SearchEngine(DOCS)
    assert engine.search("shampoo") == (3, 0)  # the shorter document scores higher under BM25
    assert set(engine.search("tea bag")) == {1, 2, 5}
    assert engine.search("tea bag")[0] == 1  # the only document with both terms
    assert engine.search("unknown words") == ()
    assert engine.search("the of and") == ()  # only stop words


def test_search_top_k_and_tie_order():
    engine = SearchEngine(["tea"] * 70, top_k=50)
    hits = engine.search("tea")
    assert hits == tuple(range(50))  # equal scores keep catalogue order


def test_search_is_memoised():
    engine = SearchEngine(DOCS)
    first = engine.search("green tea")
    assert engine.search("green tea") is first
    assert engine.search.cache_info().hits == 1
