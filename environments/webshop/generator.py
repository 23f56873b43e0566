"""The embedded catalogue: a seeded generator of WebShop-style products and shopping goals.

Products come in *families* of four that a careless shopper confuses:

- ``base``: a product of some type with 3-4 attributes, 1-3 option groups and a price;
- ``attribute`` variant: the same at the same price, with the family's *key attribute* swapped for
  another one;
- ``option`` variant: the same at the same price, with one value of one option group swapped for
  another value;
- ``price`` variant: the same product, more than 40 dollars dearer.

Goals name the product type, 1-3 of the target's attributes (always the family's key attribute),
0-3 of its option values (for the base and the option variant, always the swapped group) and a
price ceiling drawn by the original's rule (one of the 2nd-4th multiples of ten above the price),
so the base product satisfies its goals fully while each variant misses exactly one point
(an attribute, an option, or the price). The pools of attributes and option values of each type
are pairwise distinct under the reward's fuzzy matching, and product texts mention only their own
attributes, so what the reward sees is exactly what the generator meant.

Instructions follow the original's synthetic style (``... with color: navy blue, and size: large,
and price lower than 40.00 dollars``), in lower case.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from agentgym.environments.webshop.data import NO_PRICE_LIMIT, Goal, Product, Review

PRICE_LEVELS = [10.0 * i for i in range(1, 100)]
"""The original's price ceilings: 10, 20, ..., 990 dollars."""


@dataclass(frozen=True)
class ProductType:
    noun: str
    category: str
    query: str
    product_category: str
    attributes: tuple[str, ...]
    options: dict[str, tuple[str, ...]]
    price_range: tuple[float, float]
    blurb: str


def _t(noun, category, path, attributes, options, price_range, blurb, query=None) -> ProductType:
    return ProductType(
        noun, category, query or noun, path, tuple(attributes.split(", ")),
        {name: tuple(values.split(", ")) for name, values in options.items()}, price_range, blurb,
    )  # fmt: skip


# Each row: noun, category, category path, attribute pool, option groups, price range, a sentence.
PRODUCT_TYPES: tuple[ProductType, ...] = (
    _t("shampoo", "beauty", "Beauty & Personal Care › Hair Care › Shampoo & Conditioner › Shampoos",
       "sulfate free, paraben free, dry hair, color treated, tea tree, argan oil, cruelty free, curly hair",
       {"size": "8.4 fl oz, 12 fl oz, 16.9 fl oz, travel size", "scent": "rosemary mint, lavender, coconut, unscented, citrus"},
       (6, 32), "Gentle enough to use every day."),
    _t("face moisturizer", "beauty", "Beauty & Personal Care › Skin Care › Face › Creams & Moisturizers",
       "oil free, fragrance free, hyaluronic acid, sensitive skin, spf 30, non comedogenic, vitamin c, anti aging",
       {"size": "1.7 oz, 2.5 oz, 3.4 oz", "package": "single, two pack, three pack"},
       (9, 48), "Absorbs quickly and leaves no residue."),
    _t("lipstick", "beauty", "Beauty & Personal Care › Makeup › Lips › Lipstick",
       "long lasting, matte finish, vegan formula, moisturizing, waterproof, transfer proof, shea butter, highly pigmented",
       {"color": "ruby red, nude pink, berry, coral, mauve, plum", "package": "single, two pack"},
       (5, 28), "Glides on in one smooth stroke."),
    _t("body lotion", "beauty", "Beauty & Personal Care › Skin Care › Body › Lotions",
       "cocoa butter, fast absorbing, dry skin, paraben free, aloe vera, non greasy, dermatologist tested, vitamin e",
       {"size": "8 fl oz, 16 fl oz, 32 fl oz", "scent": "vanilla, unscented, coconut, lavender, cucumber"},
       (5, 30), "Made for the whole family."),
    _t("herbal tea", "food", "Grocery & Gourmet Food › Beverages › Tea › Herbal",
       "caffeine free, usda organic, non gmo, kosher certified, gluten free, fair trade, individually wrapped, loose leaf",
       {"flavor": "chamomile, peppermint, ginger lemon, hibiscus, rooibos", "count": "single box, three boxes, six boxes"},
       (4, 26), "Steep for five minutes for the best cup."),
    _t("protein bars", "food", "Grocery & Gourmet Food › Snack Foods › Bars › Protein Bars",
       "gluten free, high protein, low sugar, keto friendly, plant based, soy free, dairy free, non gmo",
       {"flavor": "chocolate peanut butter, cookie dough, salted caramel, blueberry, almond coconut", "count": "single box, value pack, variety box"},
       (12, 45), "A satisfying snack between meals."),
    _t("ground coffee", "food", "Grocery & Gourmet Food › Beverages › Coffee › Ground Coffee",
       "medium roast, dark roast, single origin, fair trade, usda organic, low acid, kosher certified, nitrogen flushed",
       {"size": "small bag, large bag, bulk box", "grind": "fine grind, coarse grind, espresso grind"},
       (8, 40), "Roasted in small batches."),
    _t("olive oil", "food", "Grocery & Gourmet Food › Pantry Staples › Oils › Olive Oil",
       "extra virgin, cold pressed, usda organic, non gmo, single estate, kosher certified, glass bottle, first harvest",
       {"size": "500 ml, 750 ml, 1 liter, 3 liter tin"},
       (9, 60), "Pressed within hours of harvest."),
    _t("t-shirt", "fashion", "Clothing, Shoes & Jewelry › Men › Clothing › Shirts › T-Shirts",
       "machine wash, short sleeve, crew neck, moisture wicking, relaxed fit, slim fit, pre shrunk, organic cotton",
       {"color": "black, white, navy blue, heather grey, olive green", "size": "small, medium, large", "package": "single, two pack, three pack"},
       (8, 35), "Holds its shape wash after wash.", query="t shirts"),
    _t("running shoes", "fashion", "Clothing, Shoes & Jewelry › Women › Shoes › Athletic › Running",
       "non slip, lightweight, breathable mesh, arch support, memory foam, wide toe box, shock absorbing, rubber sole",
       {"color": "black, white, pink, grey, blue", "size": "6, 7, 8, 9, 10, 11", "width": "regular, wide"},
       (30, 140), "Built for miles on road and trail."),
    _t("backpack", "fashion", "Clothing, Shoes & Jewelry › Luggage & Travel Gear › Backpacks › Casual Daypacks",
       "water resistant, laptop compartment, padded straps, usb charging port, anti theft, large capacity, lifetime warranty, hidden pocket",
       {"color": "black, grey, navy blue, burgundy, camo"},
       (20, 90), "Fits a full day of gear."),
    _t("beanie hat", "fashion", "Clothing, Shoes & Jewelry › Women › Accessories › Hats & Caps › Skullies & Beanies",
       "fleece lined, cable knit, hand wash, pom pom, stretchy, acrylic yarn, slouchy, unisex",
       {"color": "black, cream, red, charcoal, mustard"},
       (8, 30), "Keeps out the winter wind."),
    _t("accent chair", "furniture", "Home & Kitchen › Furniture › Living Room Furniture › Chairs › Accent Chairs",
       "mid century, solid wood, easy assembly, living room, button tufted, velvet upholstery, high density foam, armless",
       {"color": "navy blue, grey, emerald, mustard yellow, blush pink, ivory", "leg finish": "walnut, black metal, gold metal"},
       (90, 420), "A comfortable seat for any corner."),
    _t("coffee table", "furniture", "Home & Kitchen › Furniture › Living Room Furniture › Tables › Coffee Tables",
       "solid wood, storage shelf, easy assembly, rustic, tempered glass, lift top, round, metal frame",
       {"color": "walnut, black, white, natural"},
       (60, 360), "Anchors the living room."),
    _t("bookcase", "furniture", "Home & Kitchen › Furniture › Home Office Furniture › Bookcases",
       "industrial, adjustable shelves, metal frame, easy assembly, open back, anti tip kit, space saving, engineered wood",
       {"color": "rustic brown, black, white, grey wash", "height": "short, tall"},
       (45, 260), "Room for books, plants and frames."),
    _t("sheet set", "furniture", "Home & Kitchen › Bedding › Sheets & Pillowcases › Sheet & Pillowcase Sets",
       "deep pocket, wrinkle resistant, egyptian cotton, cooling, hypoallergenic, bamboo viscose, fade resistant, sateen weave",
       {"size": "twin, full, queen, king", "color": "white, ivory, sage, grey, navy"},
       (22, 150), "Soft from the first night."),
    _t("wireless earbuds", "electronics", "Electronics › Headphones, Earbuds & Accessories › Earbuds",
       "noise cancelling, bluetooth, charging case, long battery life, built in microphone, touch control, sweat proof, low latency",
       {"color": "black, white, blue, rose gold"},
       (18, 160), "Pairs in seconds with phones and laptops."),
    _t("phone case", "electronics", "Cell Phones & Accessories › Cases, Holsters & Sleeves › Basic Cases",
       "shockproof, wireless charging compatible, slim profile, kickstand, screen protector included, raised edges, military grade, clear back",
       {"color": "clear, black, purple, navy blue, red", "model": "iphone 15, pixel 8, galaxy s24"},
       (7, 35), "Protection without the bulk."),
    _t("power bank", "electronics", "Electronics › Cell Phone Accessories › Chargers & Power Adapters › Portable Power Banks",
       "fast charging, usb c, led display, compact, airline approved, dual output, wireless charging, high capacity",
       {"color": "black, white, blue"},
       (15, 80), "Charges a phone several times over."),
    _t("desk lamp", "electronics", "Tools & Home Improvement › Lighting & Ceiling Fans › Lamps & Shades › Desk Lamps",
       "dimmable, usb charging port, eye caring, touch control, adjustable arm, energy efficient, memory function, clamp mount",
       {"color": "black, white, silver"},
       (16, 90), "Bright light where you need it."),
)  # fmt: skip

BRANDS = (
    "Thistlebrook", "Meadowlark", "Quillfern", "Brisbury", "Larkspire", "Northvale", "Copperleaf",
    "Wrenfield", "Halcyon", "Bramblecot", "Juniper & Co", "Kestrel", "Marlowe", "Oakhurst", "Pinecrest",
    "Redfern", "Saltmarsh", "Tidewell", "Umbra Goods", "Vellum", "Willowmere", "Yarrow", "Zephyrine",
    "Ambleside", "Birchwick", "Cobblestone", "Dunmore", "Evergale", "Foxglove", "Greyhaven",
)  # fmt: skip

REVIEW_TITLES = ("Great value", "Works well", "Would buy again", "Does the job", "Pleasantly surprised")
REVIEW_BODIES = (
    "Exactly as described: {attribute}.",
    "I wanted something {attribute} and this is it.",
    "The {noun} arrived quickly. {Attribute}, as promised.",
)
LEADS = ("i need", "i am looking for", "find me", "i want to buy", "i'd like", "show me")


@dataclass(frozen=True)
class CatalogueSize:
    """How big a generated catalogue is: families per type, goals per product, the test split."""

    num_types: int
    families_per_type: int
    goals_per_product: int
    test_size: int


SIZES = {
    "default": CatalogueSize(num_types=20, families_per_type=15, goals_per_product=5, test_size=500),
    "small": CatalogueSize(num_types=10, families_per_type=4, goals_per_product=3, test_size=100),
}
"""``default``: 1,200 products, 6,000 goals (test 0-499). ``small``: 160 products, 480 goals (test 0-99)."""


def price_ceiling(price: float, rng: random.Random) -> float:
    """The original's ``price_upper``: the larger of two distinct draws among the (up to) four
    multiples of ten strictly above ``price``; no limit when fewer than two exist (price >= 980)."""
    levels = [level for level in PRICE_LEVELS if level > price][:4]
    if len(levels) < 2:
        return NO_PRICE_LIMIT
    return max(rng.sample(levels, 2))


def price_text(price_upper: float) -> str:
    return "" if price_upper >= NO_PRICE_LIMIT else f", and price lower than {price_upper:.2f} dollars"


def _money(value: float) -> float:
    """A shop price such as 14.99."""
    return round(max(1.0, round(value)) - 0.01, 2)


class _Generator:
    def __init__(self, size: CatalogueSize, seed: int):
        self.size = size
        self.rng = random.Random(seed)
        self.asins: set[str] = set()
        self.products: list[Product] = []
        self.goals: list[Goal] = []

    def new_asin(self) -> str:
        while True:
            asin = "B0" + "".join(self.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(8))
            if asin not in self.asins:
                self.asins.add(asin)
                return asin

    def product(
        self,
        kind: ProductType,
        brand: str,
        attributes: list[str],
        options: dict[str, tuple[str, ...]],
        price: float,
    ) -> Product:
        noun = kind.noun
        title = f"{brand} {noun.title()} - " + ", ".join(attribute.title() for attribute in attributes)
        listed = ", ".join(attributes[:-1]) + f" and {attributes[-1]}"
        description = f"{brand} {noun}, {listed}. {kind.blurb}"
        bullets = tuple(f"{attribute.capitalize()} {noun}" for attribute in attributes)
        reviews = []
        for _ in range(self.rng.randint(1, 2)):
            attribute = self.rng.choice(attributes)
            body = self.rng.choice(REVIEW_BODIES).format(
                attribute=attribute, Attribute=attribute.capitalize(), noun=noun
            )
            reviews.append(Review(self.rng.choice(REVIEW_TITLES), self.rng.randint(3, 5), body))
        rating = f"{sum(review.score for review in reviews) / len(reviews):.1f}"
        product = Product(
            asin=self.new_asin(),
            title=title,
            description=description,
            bullet_points=bullets,
            price=price,
            price_tag=f"${price}",
            options=options,
            attributes=tuple(attributes),
            category=kind.category,
            query=kind.query,
            product_category=kind.product_category,
            reviews=tuple(reviews),
            rating=rating,
        )
        self.products.append(product)
        return product

    def family(self, kind: ProductType) -> None:
        rng = self.rng
        brand = rng.choice(BRANDS)
        pool = list(kind.attributes)
        rng.shuffle(pool)
        count = rng.choice((3, 3, 4))
        attributes, spare_attributes = pool[:count], pool[count:]
        options = {}
        for name, values in kind.options.items():
            # At least one value of each pool stays out, so the option variant has a replacement.
            keep = sorted(
                rng.sample(range(len(values)), rng.randint(min(2, len(values) - 1), len(values) - 1))
            )
            options[name] = tuple(values[i] for i in keep)
        low, high = kind.price_range
        price = _money(rng.uniform(low, high))

        base = self.product(kind, brand, attributes, options, price)
        key = rng.randrange(count)
        swapped = list(attributes)
        swapped[key] = rng.choice(spare_attributes)
        attribute_variant = self.product(kind, brand, swapped, options, price)
        group = rng.choice(list(options))
        missing = [value for value in kind.options[group] if value not in options[group]]
        slot = rng.randrange(len(options[group]))
        replacement = rng.choice(missing)
        changed = dict(options)
        changed[group] = (*options[group][:slot], replacement, *options[group][slot + 1 :])
        option_variant = self.product(kind, brand, attributes, changed, price)
        price_variant = self.product(kind, brand, attributes, options, _money(price + rng.uniform(42, 60)))

        # The base gets 2 goals in 5, each variant 1 in 5.
        targets = [base, attribute_variant, base, option_variant, price_variant]
        seen: set[tuple] = set()
        for index in range(4 * self.size.goals_per_product):
            target = targets[index % len(targets)]
            pinned = {group: options[group][slot]} if target is base else {}
            if target is option_variant:
                pinned = {group: replacement}
            for _ in range(20):
                goal = self.goal(kind, target, key, pinned)
                signature = (target.asin, frozenset(goal.attributes), goal.goal_options, goal.price_upper)
                if signature not in seen:
                    break
            seen.add(signature)
            self.goals.append(goal)

    def goal(self, kind: ProductType, target: Product, key: int, pinned: dict[str, str]) -> Goal:
        rng = self.rng
        others = [a for i, a in enumerate(target.attributes) if i != key]
        attributes = [target.attributes[key], *rng.sample(others, rng.randint(0, min(2, len(others))))]
        rng.shuffle(attributes)
        groups = list(target.options)
        num_options = rng.choice([n for n in (0, 1, 1, 2, 2, 3) if n <= len(groups)])
        if pinned and num_options == 0 and rng.random() < 0.7:
            num_options = 1
        chosen_groups = list(pinned)[:num_options] if num_options else []
        free_groups = [g for g in groups if g not in chosen_groups]
        chosen_groups += rng.sample(free_groups, num_options - len(chosen_groups))
        chosen_groups.sort(key=groups.index)
        values = {g: pinned.get(g) or rng.choice(target.options[g]) for g in chosen_groups}
        price_upper = price_ceiling(target.price, rng)

        listed = ", ".join(attributes[:-1]) + (" and " if len(attributes) > 1 else "") + attributes[-1]
        option_text = ", and ".join(f"{name}: {value}" for name, value in values.items())
        instruction = f"{rng.choice(LEADS)} {listed} {kind.noun}"
        if option_text:
            instruction += f" with {option_text}"
        return Goal(
            asin=target.asin,
            instruction_text=instruction + price_text(price_upper),
            attributes=tuple(attributes),
            goal_options=tuple(values.values()),
            price_upper=price_upper,
            name=target.title,
            query=kind.query,
            category=kind.category,
            product_category=kind.product_category,
        )


def type_selection(num_types: int) -> list[ProductType]:
    """The first ``num_types`` types taken round-robin over the categories (so every category shows)."""
    by_category: dict[str, list[ProductType]] = {}
    for kind in PRODUCT_TYPES:
        by_category.setdefault(kind.category, []).append(kind)
    columns = list(by_category.values())
    ordered = [
        column[row] for row in range(max(map(len, columns))) for column in columns if row < len(column)
    ]
    return ordered[:num_types]


def generate_catalogue(size: CatalogueSize, seed: int = 0) -> tuple[list[Product], list[Goal]]:
    """Products and goals, both in a seeded shuffled order (goal index = task id)."""
    generator = _Generator(size, seed)
    for kind in type_selection(size.num_types):
        for _ in range(size.families_per_type):
            generator.family(kind)
    products, goals = generator.products, generator.goals
    generator.rng.shuffle(products)
    generator.rng.shuffle(goals)
    return products, goals
