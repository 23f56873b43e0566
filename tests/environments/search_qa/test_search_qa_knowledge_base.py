import hashlib
import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from agentgym.environments.search_qa import KBConfig, build_knowledge_base, generate_knowledge_base
from agentgym.environments.search_qa.knowledge_base import RELATIONS, read_facts


@pytest.fixture(scope="module")
def kb():
    return generate_knowledge_base()


def fingerprint(kb) -> str:
    data = [kb.corpus.ids, kb.corpus.contents, {s: [t.__dict__ for t in ts] for s, ts in kb.tasks.items()}]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def test_the_default_world_has_the_promised_size(kb):
    assert len(kb.entities) >= 2000
    assert Counter(e.kind for e in kb.entities) == {
        "country": 60,
        "city": 440,
        "organisation": 400,
        "person": 1300,
    }
    assert len(kb.tasks["test"]) == 500 and len(kb.tasks["train"]) + len(kb.tasks["test"]) >= 5000
    assert set(Counter(t.hops for t in kb.tasks["train"] + kb.tasks["test"]).values()) == {2000}
    assert {t.hops for t in kb.tasks["test"]} == {1, 2, 3}


def test_names_are_unique_and_documents_short(kb):
    names = [e.name for e in kb.entities]
    assert len(set(names)) == len(names)
    assert max(len(text.split()) for text in kb.corpus.contents) <= 30
    assert all(
        text.startswith(e.name + "\n") for e, text in zip(kb.entities, kb.corpus.contents, strict=True)
    )


def test_every_document_reads_back_as_its_facts(kb):
    for entity, text in zip(kb.entities, kb.corpus.contents, strict=True):
        assert read_facts(text, entity.kind) == dict(entity.facts)
    assert read_facts("Tarsh\nsomething else entirely", "city") is None


def test_questions_follow_their_chain_to_the_answer_without_naming_it(kb):
    by_name = {e.name: e for e in kb.entities}
    questions = [t.question for ts in kb.tasks.values() for t in ts]
    assert len(set(questions)) == len(questions)
    for task in kb.tasks["test"] + kb.tasks["train"][:500]:
        entity, visited = kb.entity(task.start), []
        assert entity.name in task.question and len(task.path) == task.hops
        for relation in task.path[:-1]:
            assert RELATIONS[(entity.kind, relation)].target is not None
            visited.append(entity.name)
            entity = by_name[entity.facts[relation]]
        visited.append(entity.name)
        assert task.answers == (entity.facts[task.path[-1]],)
        assert task.answers[0].lower() not in task.question.lower()
        assert len(set(visited)) == len(visited)


def test_generation_is_deterministic_across_processes_and_seeded(kb):
    assert fingerprint(build_knowledge_base()) == fingerprint(kb)
    code = (
        "import hashlib, json; from agentgym.environments.search_qa import generate_knowledge_base as g; "
        "kb = g(); data = [kb.corpus.ids, kb.corpus.contents, "
        "{s: [t.__dict__ for t in ts] for s, ts in kb.tasks.items()}]; "
        "print(hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert other.stdout.strip() == fingerprint(kb)
    assert fingerprint(build_knowledge_base(KBConfig(seed=1))) != fingerprint(kb)


def test_a_world_too_small_for_its_questions_says_so():
    with pytest.raises(ValueError, match="enlarge the world"):
        # 5 entities with 3 relations each allow 15 one-hop questions, fewer than the 37 asked for
        tiny = KBConfig(
            countries=1, cities=1, organisations=1, people=2, train_questions=100, test_questions=10
        )
        build_knowledge_base(tiny)


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ({"cities": 20}, "cities=20 .* at least as many cities as countries .60."),
        ({"people": 1}, "people=1 .* at least 2"),
        ({"organisations": 0}, "organisations=0 .* at least 1"),
        ({"given_names": 0}, "given_names=0 .* at least 1"),
        ({"seed": -1}, "seed=-1 .* at least 0"),  # numpy's own message named no option
        ({"seed": "1"}, "seed='1' .* must be an integer"),
    ],
)
def test_a_world_with_impossible_sizes_says_which(sizes, message):
    with pytest.raises(ValueError, match=message):
        build_knowledge_base(KBConfig(**sizes))


def test_the_cached_world_checks_its_options_before_caching_them():
    # The cache hashes the config: a list used to fail there with "unhashable type: 'list'".
    with pytest.raises(ValueError, match=r"people=\[3\] is not allowed"):
        generate_knowledge_base(KBConfig(people=[3]))


def test_split_files_use_search_r1_formats(kb, tmp_path):
    kb.write_corpus(tmp_path / "corpus.jsonl")
    kb.write_qa(tmp_path / "test.jsonl", "test")
    first_doc = json.loads((tmp_path / "corpus.jsonl").read_text().splitlines()[0])
    assert first_doc == {"id": kb.corpus.ids[0], "contents": kb.corpus.contents[0]}
    rows = [json.loads(line) for line in (tmp_path / "test.jsonl").read_text().splitlines()]
    assert len(rows) == 500
    assert rows[3] == {
        "id": "test_3",
        "question": kb.tasks["test"][3].question,
        "golden_answers": list(kb.tasks["test"][3].answers),
    }
