"""The embedded default of search-qa: a generated world of invented entities and multi-hop questions.

Example::

    kb = generate_knowledge_base()               # ~0.3 s, deterministic in KBConfig.seed
    kb.corpus.contents[0]                         # 'Quenmark\\nQuenmark is a country whose capital is ...'
    kb.tasks["test"][0].question, kb.tasks["test"][0].answers

Entities (2,200 by default) are countries, cities, organisations and people whose names are
invented words, so no model can know a fact without retrieving it. Each entity is one short
document (title line, then one or two sentences stating all its facts)::

    country       capital (city), founded (year), currency
    city          country, founded (year), mayor (person)
    organisation  city, founded (year), founder (person)
    person        occupation, birthplace (city), birth_year, employer (organisation), mentor (person)

A question starts from an entity named in it and follows 1, 2 or 3 relations, each hop needing
the document of the entity reached so far: "Who founded the employer of the mentor of Velmora
Quint?" takes the documents of Velmora Quint, of her mentor and of the mentor's employer.
Questions never name their answer or revisit an entity along the chain. The hop counts are
balanced; the split sizes are fixed by the config (test: 500).

Documents are written from sentence templates and the scripted expert reads facts back with the
same templates, so the expert only answers what it has actually retrieved.
"""

from __future__ import annotations

import functools
import json
import re
import string
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agentgym.tools.retrieval import Corpus

KINDS = ("country", "city", "organisation", "person")

TEMPLATES: dict[str, str] = {
    "country": "{name} is a country whose capital is {capital}. "
    "It was founded in {founded} and its currency is the {currency}.",
    "city": "{name} is a city in {country}, founded in {founded}. Its mayor is {mayor}.",
    "organisation": "{name} is an organisation based in {city}. It was founded in {founded} by {founder}.",
    "person": "{name} is a {occupation} born in {birthplace} in {birth_year}. "
    "{name} works for {employer} and was mentored by {mentor}.",
}


@dataclass(frozen=True)
class Relation:
    target: str | None  # the kind of entity reached, None for a literal (year, currency)
    question: str  # the question asking for it, about {x}
    phrase: str = ""  # the noun phrase naming the entity reached from {x} (entity relations only)


RELATIONS: dict[tuple[str, str], Relation] = {
    ("country", "capital"): Relation("city", "What is the capital of {x}?", "the capital of {x}"),
    ("country", "founded"): Relation(None, "In which year was {x} founded?"),
    ("country", "currency"): Relation(None, "What is the currency of {x}?"),
    ("city", "country"): Relation("country", "In which country is {x}?", "the country of {x}"),
    ("city", "founded"): Relation(None, "In which year was {x} founded?"),
    ("city", "mayor"): Relation("person", "Who is the mayor of {x}?", "the mayor of {x}"),
    ("organisation", "city"): Relation("city", "In which city is {x} based?", "the home city of {x}"),
    ("organisation", "founded"): Relation(None, "In which year was {x} founded?"),
    ("organisation", "founder"): Relation("person", "Who founded {x}?", "the founder of {x}"),
    ("person", "birthplace"): Relation("city", "In which city was {x} born?", "the birthplace of {x}"),
    ("person", "birth_year"): Relation(None, "In which year was {x} born?"),
    ("person", "employer"): Relation(
        "organisation", "Which organisation does {x} work for?", "the employer of {x}"
    ),
    ("person", "mentor"): Relation("person", "Who mentored {x}?", "the mentor of {x}"),
}

OCCUPATIONS = (
    "chemist", "painter", "sailor", "baker", "poet", "surveyor", "weaver", "potter", "judge",
    "merchant", "cartographer", "botanist", "mason", "linguist", "physician", "composer",
    "glassblower", "tailor", "sculptor", "navigator",
)  # fmt: skip
ORGANISATION_KINDS = (
    "Institute", "Foundry", "Bank", "Observatory", "Library", "Press", "Guild", "Museum",
    "Academy", "Shipyard", "Company", "Orchestra",
)  # fmt: skip
COUNTRY_SUFFIXES = ("ia", "mark", "land", "ora", "istan", "ovia")
CURRENCY_UNITS = ("mark", "crown", "florin", "shilling", "dinar", "thaler")
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "tr", "st", "th", "sh", "gl")  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "ae", "ei", "ou")
_CODAS = ("", "", "", "n", "r", "l", "s", "th", "k", "x")


@dataclass(frozen=True)
class KBConfig:
    """Sizes of the generated world; every field changes the knowledge base, so all are part of its key."""

    seed: int = 0
    countries: int = 60
    cities: int = 440
    organisations: int = 400
    people: int = 1300
    given_names: int = 150
    train_questions: int = 5500
    test_questions: int = 500


@dataclass(frozen=True)
class Entity:
    id: str
    kind: str
    name: str
    facts: Mapping[str, str]


@dataclass(frozen=True)
class QATask:
    """One question. ``start``/``path`` (embedded tasks only): the chain of relations it follows."""

    question: str
    answers: tuple[str, ...]
    hops: int | None = None
    start: str | None = None
    path: tuple[str, ...] = ()


@dataclass
class KnowledgeBase:
    config: KBConfig
    entities: list[Entity]
    tasks: dict[str, list[QATask]]
    corpus: Corpus = field(init=False)

    def __post_init__(self) -> None:
        self.corpus = Corpus([e.id for e in self.entities], [document(e) for e in self.entities])
        self._by_id = {e.id: e for e in self.entities}

    def entity(self, entity_id: str) -> Entity:
        return self._by_id[entity_id]

    def write_corpus(self, path: str | Path) -> None:
        """The documents as a Search-R1 corpus JSONL (to index or serve elsewhere)."""
        self.corpus.to_jsonl(path)

    def write_qa(self, path: str | Path, split: str) -> None:
        """A split as a Search-R1 QA JSONL: ``{"id", "question", "golden_answers"}`` per line."""
        with Path(path).open("w", encoding="utf-8") as out:
            for number, task in enumerate(self.tasks[split]):
                row = {
                    "id": f"{split}_{number}",
                    "question": task.question,
                    "golden_answers": list(task.answers),
                }
                out.write(json.dumps(row) + "\n")


def document(entity: Entity) -> str:
    return entity.name + "\n" + TEMPLATES[entity.kind].format(name=entity.name, **entity.facts)


@functools.cache
def _template_regex(kind: str) -> re.Pattern[str]:
    parts, seen = [], set()
    for literal, name, _, _ in string.Formatter().parse(TEMPLATES[kind]):
        parts.append(re.escape(literal))
        if name is not None:
            parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
            seen.add(name)
    return re.compile("".join(parts))


def read_facts(contents: str, kind: str) -> dict[str, str] | None:
    """The facts a ``kind`` document states, read back with its template; None if it does not parse."""
    title, _, text = contents.partition("\n")
    match = _template_regex(kind).fullmatch(text)
    if match is None or match.group("name") != title:
        return None
    return {key: value for key, value in match.groupdict().items() if key != "name"}


def expert_action(kb: KnowledgeBase, task: QATask, retrieved: Mapping[str, str]) -> str:
    """The next Search-R1 action of a reader who follows ``task``'s chain through ``retrieved`` documents.

    ``retrieved`` maps the ids of the documents shown so far to their contents. Hop by hop, the
    expert looks among them for the document titled with the current entity's name and reads the
    next relation from it; the first entity it has not read about is searched by name. When the
    chain is complete it answers with the value it read.
    """
    kind, name = kb.entity(task.start).kind, kb.entity(task.start).name
    by_title: dict[str, list[str]] = {}
    for contents in retrieved.values():
        by_title.setdefault(contents.partition("\n")[0], []).append(contents)
    for relation in task.path:
        facts = next((f for c in by_title.get(name, []) if (f := read_facts(c, kind)) is not None), None)
        if facts is None:
            return f"<search>{name}</search>"
        name, kind = facts[relation], RELATIONS[(kind, relation)].target
    return f"<answer>{name}</answer>"


# Generation. --------------------------------------------------------------------------------------


def _names(
    rng: np.random.Generator, count: int, taken: set[str], decorate: Callable[[str], str] = str
) -> list[str]:
    """``count`` new names, each an invented two-syllable word passed through ``decorate``.

    Neither the word nor the name may be in ``taken`` (which is updated), so every word names
    one entity only and a search for it finds that entity's document.
    """
    names: list[str] = []
    while len(names) < count:
        word = "".join(
            _ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))] for _ in range(2)
        )
        word = (word + _CODAS[rng.integers(len(_CODAS))]).capitalize()
        name = decorate(word)
        if word not in taken and name not in taken:
            taken.update((word, name))
            names.append(name)
    return names


def _pick(rng: np.random.Generator, items: list[Entity]) -> Entity:
    return items[int(rng.integers(len(items)))]


def _entities(config: KBConfig, rng: np.random.Generator) -> list[Entity]:
    taken: set[str] = set()

    def suffixed(suffixes: tuple[str, ...], sep: str = "") -> Callable[[str], str]:
        return lambda word: f"{word}{sep}{suffixes[rng.integers(len(suffixes))]}"

    country_names = _names(rng, config.countries, taken, suffixed(COUNTRY_SUFFIXES))
    city_names = _names(rng, config.cities, taken)
    org_names = _names(rng, config.organisations, taken, suffixed(ORGANISATION_KINDS, " "))
    given = _names(rng, config.given_names, taken)
    person_names = _names(rng, config.people, taken, lambda word: f"{given[rng.integers(len(given))]} {word}")
    currencies = _names(rng, config.countries, taken, suffixed(CURRENCY_UNITS, " "))

    # Names first, facts second: facts point at entities of every kind.
    people = [Entity(f"person-{i:04d}", "person", n, {}) for i, n in enumerate(person_names)]
    cities = [Entity(f"city-{i:04d}", "city", n, {}) for i, n in enumerate(city_names)]
    orgs = [Entity(f"organisation-{i:04d}", "organisation", n, {}) for i, n in enumerate(org_names)]
    countries = [Entity(f"country-{i:04d}", "country", n, {}) for i, n in enumerate(country_names)]
    # every country gets its capital first, the remaining cities are spread at random
    city_country = [countries[i] if i < len(countries) else _pick(rng, countries) for i in range(len(cities))]
    birth_years = {p.id: int(rng.integers(1780, 1991)) for p in people}

    facts: dict[str, dict[str, str]] = {}
    for country, capital, currency in zip(countries, cities, currencies, strict=False):
        facts[country.id] = {
            "capital": capital.name,
            "founded": str(rng.integers(1400, 1900)),
            "currency": currency,
        }
    for city, country in zip(cities, city_country, strict=True):
        facts[city.id] = {
            "country": country.name,
            "founded": str(rng.integers(1100, 1900)),
            "mayor": _pick(rng, people).name,
        }
    for org in orgs:
        founder = _pick(rng, people)
        founded = min(birth_years[founder.id] + int(rng.integers(25, 61)), 2020)
        facts[org.id] = {"city": _pick(rng, cities).name, "founded": str(founded), "founder": founder.name}
    for index, person in enumerate(people):
        mentor = people[(index + 1 + int(rng.integers(len(people) - 1))) % len(people)]  # never oneself
        facts[person.id] = {
            "occupation": OCCUPATIONS[rng.integers(len(OCCUPATIONS))],
            "birthplace": _pick(rng, cities).name,
            "birth_year": str(birth_years[person.id]),
            "employer": _pick(rng, orgs).name,
            "mentor": mentor.name,
        }
    return [Entity(e.id, e.kind, e.name, facts[e.id]) for e in (*countries, *cities, *orgs, *people)]


def _phrase(
    by_name: dict[str, Entity], start: Entity, path: tuple[str, ...]
) -> tuple[str, list[Entity], str]:
    """The question text, the entities along the chain, and the answer."""
    text, entity, chain = start.name, start, [start]
    for relation in path[:-1]:
        text = RELATIONS[(entity.kind, relation)].phrase.format(x=text)
        entity = by_name[entity.facts[relation]]
        chain.append(entity)
    last = RELATIONS[(entity.kind, path[-1])]
    return last.question.format(x=text), chain, entity.facts[path[-1]]


def _questions(config: KBConfig, entities: list[Entity], rng: np.random.Generator) -> list[QATask]:
    by_name = {e.name: e for e in entities}
    relations_of = {kind: [r for (k, r) in RELATIONS if k == kind] for kind in KINDS}
    total = config.train_questions + config.test_questions
    quota = {hops: total // 3 + (1 if hops <= total % 3 else 0) for hops in (1, 2, 3)}
    tasks: list[QATask] = []
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for hops in (1, 2, 3):
        made = 0
        for _ in range(50 * quota[hops]):
            if made == quota[hops]:
                break
            start = _pick(rng, entities)
            entity, path = start, []
            for hop in range(hops):
                options = [
                    r
                    for r in relations_of[entity.kind]
                    if hop == hops - 1 or RELATIONS[(entity.kind, r)].target
                ]
                relation = options[int(rng.integers(len(options)))]
                path.append(relation)
                if hop < hops - 1:
                    entity = by_name[entity.facts[relation]]
            key = (start.id, tuple(path))
            if key in seen:
                continue
            question, chain, answer = _phrase(by_name, start, tuple(path))
            names = [e.name for e in chain]
            if len(set(names)) < len(names) or answer in names or answer.lower() in question.lower():
                continue
            seen.add(key)
            tasks.append(QATask(question, (answer,), hops, start.id, tuple(path)))
            made += 1
        if made < quota[hops]:
            raise ValueError(
                f"could only generate {made} of {quota[hops]} {hops}-hop questions; enlarge the world"
            )
    order = rng.permutation(len(tasks))
    return [tasks[i] for i in order]


def _check_sizes(config: KBConfig) -> None:
    """A ValueError naming the first option that cannot make a world (the generator needs them all)."""
    # Two people at least: a mentor is never oneself. The seed goes to numpy, whose own error names no option.
    minimums = {"seed": 0, "countries": 1, "cities": 1, "organisations": 1, "given_names": 1, "people": 2}
    minimums |= {"train_questions": 0, "test_questions": 0}
    for name, least in minimums.items():
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise ValueError(
                f"knowledge base: {name}={value!r} is not allowed: it must be an integer, at least {least}"
            )
    if config.cities < config.countries:  # each country's capital is a city of its own
        raise ValueError(
            f"knowledge base: cities={config.cities} is too few; a world needs at least as many cities "
            f"as countries ({config.countries})"
        )


def build_knowledge_base(config: KBConfig | None = None) -> KnowledgeBase:
    """Generates the knowledge base of ``config`` (default :class:`KBConfig()`); deterministic in it."""
    config = config or KBConfig()
    _check_sizes(config)
    rng = np.random.default_rng(config.seed)
    entities = _entities(config, rng)
    questions = _questions(config, entities, rng)
    test, train = questions[: config.test_questions], questions[config.test_questions :]
    return KnowledgeBase(config, entities, {"train": train, "test": test})


_lock = threading.Lock()


@functools.lru_cache(maxsize=4)
def _cached(config: KBConfig) -> KnowledgeBase:
    return build_knowledge_base(config)


def generate_knowledge_base(config: KBConfig | None = None) -> KnowledgeBase:
    """:func:`build_knowledge_base`, once per process and config (environments share the result)."""
    config = config or KBConfig()
    _check_sizes(config)  # before the cache hashes the config, which an unhashable value would break
    with _lock:
        return _cached(config)
