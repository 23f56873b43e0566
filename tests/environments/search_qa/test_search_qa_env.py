import json
import re
import subprocess
import sys
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from gymnasium.error import ResetNeeded

import agentgym
from agentgym.checker import check_env
from agentgym.core import AgentGymError
from agentgym.environments.search_qa import SearchQAEnv, generate_knowledge_base, load_qa
from agentgym.tools.retrieval import RetrievalClient
from agentgym.tools.servers import wait_until_ready


@pytest.fixture
def env():
    environment = agentgym.make("search-qa")
    yield environment
    environment.close()


def play_expert(env, task_id, split="test"):
    env.reset(seed=task_id, options={"split": split, "task_id": task_id})
    actions, reward, done = [], 0.0, False
    while not done:
        action = env.unwrapped.expert_action()
        actions.append(action)
        _, reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    return actions, reward, info


def test_the_registered_env_follows_the_search_r1_protocol(env):
    kb = generate_knowledge_base()
    task = kb.tasks["test"][1]
    observation, info = env.reset(seed=0, options={"split": "test", "task_id": 1})
    assert observation == f"Question: {task.question}"
    assert info == {
        "task": task.question,
        "task_id": 1,
        "split": "test",
        "anchor": (),
        "gold": list(task.answers),
        "task_type": f"{task.hops}-hop",
    }
    assert env.unwrapped.action_format == "raw" and "<search>" in env.unwrapped.instructions

    name = kb.entity(task.start).name
    observation, reward, terminated, truncated, info = env.step(
        f"<think>Look her up.</think><search>{name}</search>"
    )
    assert (reward, terminated, truncated, info["action_valid"]) == (0.0, False, False, True)
    assert observation.startswith(f"<information>Doc 1(Title: {name}) {name} is a ")
    assert observation.endswith("</information>") and observation.count("\nDoc ") == 2
    anchor = info["anchor"]
    assert len(anchor) == 3 and list(anchor) == sorted(anchor) and kb.entity(task.start).id in anchor

    observation, reward, terminated, truncated, info = env.step(f"<answer>{task.answers[0]}</answer>")
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert (info["em"], info["f1"], info["won"], info["score"], info["answer"]) == (
        1.0,
        1.0,
        True,
        1.0,
        task.answers[0],
    )
    assert info["anchor"] == anchor


def test_a_wrong_answer_scores_zero_em_and_its_f1():
    env = SearchQAEnv(reward="f1")
    env.reset(seed=0, options={"split": "test", "task_id": 0})
    gold = env.unwrapped._task.answers[0]
    _, reward, terminated, _, info = env.step(f"<answer>{gold} and something else</answer>")
    # answer tokens: gold's, "and", "something", "else"; F1 = 2 p r / (p + r) with r = 1
    precision = len(gold.split()) / (len(gold.split()) + 3)
    assert terminated and info["em"] == 0.0 and not info["won"]
    assert reward == info["f1"] == info["score"] == pytest.approx(2 * precision / (precision + 1))


@pytest.mark.parametrize(
    ("action", "error"),
    [
        ("I think the answer is Tarsh.", "no <search>...</search> or <answer>...</answer> block"),
        ("<search>unclosed", "<search> is never closed"),
        ("<answer></answer>", "the <answer> block is empty"),
        ("", "no <search>"),
        (None, "an action is a string, not NoneType"),
    ],
)
def test_malformed_turns_are_invalid_and_change_nothing(env, action, error):
    kb = generate_knowledge_base()
    env.reset(seed=0, options={"split": "train", "task_id": 5})
    _, _, _, _, before = env.step(f"<search>{kb.entity(kb.tasks['train'][5].start).name}</search>")
    observation, reward, terminated, truncated, info = env.step(action)
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert info["action_valid"] is False and error in info["error"]
    assert observation.startswith("Invalid action: ") and "<search> and </search>" in observation
    assert info["anchor"] == before["anchor"]


def test_after_the_answer_further_turns_are_invalid():
    env = SearchQAEnv()
    env.reset(seed=0, options={"split": "test", "task_id": 0})
    env.step("<answer>whatever</answer>")
    _, reward, terminated, _, info = env.step("<answer>again</answer>")
    assert (reward, terminated, info["action_valid"]) == (0.0, False, False)
    assert "already answered" in info["error"]


def test_step_and_expert_before_reset_ask_for_a_reset():
    # Without a reset there is no chosen question: answering one the env picked itself would be scored silently.
    env = SearchQAEnv()
    with pytest.raises(ResetNeeded, match="reset"):
        env.step("<answer>Tarsh</answer>")
    with pytest.raises(ResetNeeded, match="reset"):
        env.expert_action()
    env.reset(seed=0, options={"split": "test", "task_id": 0})
    assert env.expert_action().startswith("<search>")


def test_the_episode_is_truncated_after_four_turns(env):
    env.reset(seed=0, options={"split": "test", "task_id": 0})
    for turn in range(4):
        _, reward, terminated, truncated, _ = env.step("<search>Tarsh</search>")
        assert reward == 0.0 and not terminated and truncated == (turn == 3)


def test_tasks_are_enumerated_and_drawn_deterministically(env):
    unwrapped = env.unwrapped
    assert unwrapped.splits == ("train", "test")
    assert unwrapped.task_ids("test") == list(range(500)) and len(unwrapped.task_ids("train")) == 5500
    assert env.reset(seed=3)[1]["task_id"] == env.reset(seed=3)[1]["task_id"]
    assert env.reset(seed=3)[1]["split"] == "train"
    assert env.reset(options={"split": "test", "task_id": "7"})[1]["task_id"] == 7
    for split in ("dev", ["test"]):
        with pytest.raises(AgentGymError, match=rf"unknown split {re.escape(repr(split))}"):
            env.reset(options={"split": split})
    for task_id in (500, " 7x", [7], True):
        with pytest.raises(ValueError, match=r"is not in split 'test': ids are 0\.\.499"):
            env.reset(options={"split": "test", "task_id": task_id})
    assert env.reset(options={"split": "test", "task_id": None})[1]["split"] == "test"  # drawn
    assert env.reset(seed=3, options={"split": None})[1] == env.reset(seed=3)[1]  # None: not given


def test_a_url_list_with_an_empty_entry_is_still_a_list_of_servers():
    env = agentgym.make("search-qa", retriever="http://127.0.0.1:9,")
    assert isinstance(env.unwrapped.retriever, RetrievalClient)


def test_another_generated_world_is_one_option_away(env):
    other = agentgym.make("search-qa", knowledge_base={"seed": 1})
    assert (
        other.reset(options={"split": "test", "task_id": 0})[1]["task"]
        != env.reset(options={"split": "test", "task_id": 0})[1]["task"]
    )
    assert play_expert(other, 0)[1] == 1.0


def test_a_world_without_train_questions_has_only_its_test_split():
    env = agentgym.make("search-qa", knowledge_base={"train_questions": 0, "test_questions": 5})
    assert env.unwrapped.splits == ("test",)
    assert env.reset(seed=0)[1]["split"] == "test"
    with pytest.raises(AgentGymError, match="unknown split 'train'"):
        env.reset(options={"split": "train"})
    with pytest.raises(AgentGymError, match="every split is empty"):
        agentgym.make("search-qa", knowledge_base={"train_questions": 0, "test_questions": 0})


def test_the_expert_searches_each_hop_and_answers_the_test_split():
    env = agentgym.make("search-qa")
    rewards, by_hops = [], Counter()
    for task_id in env.unwrapped.task_ids("test"):
        actions, reward, info = play_expert(env, task_id)
        rewards.append(reward)
        hops = int(info["task_type"][0])
        searches = [a for a in actions if a.startswith("<search>")]
        if reward == 1.0:
            # a search can bring the next hop's document along (a country next to its capital), never less
            assert 1 <= len(searches) <= hops and actions[-1] == f"<answer>{info['gold'][0]}</answer>"
        by_hops[hops] += reward
    assert sum(rewards) == len(rewards)  # 500 of 500, as docs/search_qa.md reports
    assert all(by_hops[hops] > 0 for hops in (1, 2, 3))


def test_search_qa_passes_check_env():
    report = check_env("search-qa")
    assert report.passed, report.failures()


@pytest.fixture
def search_r1_files(tmp_path):
    corpus = [
        {"id": "0", "contents": '"Aaron"\nAaron is a prophet and the brother of Moses.'},
        {"id": "1", "contents": '"Paris"\nParis is the capital of France.'},
        {"id": "2", "contents": '"Nile"\nThe Nile is a river in Africa.'},
    ]
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(row) + "\n" for row in corpus))
    (tmp_path / "test.jsonl").write_text(
        json.dumps({"id": "t0", "question": "what is the capital of france?", "golden_answers": ["Paris"]})
        + "\n"
    )
    table = pa.table(
        {
            "id": ["r0", "r1"],
            "question": [" who was the brother of moses? ", "where is the nile?"],
            "golden_answers": [["Aaron"], ["Africa", "in Africa"]],
            "data_source": ["nq", "nq"],
        }
    )
    pq.write_table(table, tmp_path / "train.parquet")
    return tmp_path


def test_search_r1_qa_files_load_from_jsonl_and_parquet(search_r1_files):
    tasks = load_qa(search_r1_files / "train.parquet")
    assert [(t.question, t.answers) for t in tasks] == [
        ("who was the brother of moses?", ("Aaron",)),
        ("where is the nile?", ("Africa", "in Africa")),
    ]
    assert load_qa(search_r1_files / "test.jsonl")[0].answers == ("Paris",)
    pq.write_table(pa.table({"question": ["q"], "answer": ["a"]}), search_r1_files / "bad.parquet")
    with pytest.raises(AgentGymError, match="no column golden_answers"):
        load_qa(search_r1_files / "bad.parquet")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"question": "q"}\n', "non-empty 'golden_answers'"),
        ('{"question": "q", "golden_answers": []}\n', "non-empty 'golden_answers'"),
        ("not json\n", "not a JSON line"),
        ('[{"question": "q", "golden_answers": ["a"]}]\n', "row 1 is not a JSON object"),
        ('{"question": "q", "golden_answers": ["a"]}\n"q"\n', "row 2 is not a JSON object"),
        ("", "holds no questions"),
    ],
)
def test_malformed_qa_files_are_reported(tmp_path, content, message):
    (tmp_path / "qa.jsonl").write_text(content)
    with pytest.raises(AgentGymError, match=message):
        load_qa(tmp_path / "qa.jsonl")


def test_the_env_runs_on_search_r1_data(search_r1_files):
    qa_files = {"train": str(search_r1_files / "train.parquet"), "test": str(search_r1_files / "test.jsonl")}
    env = agentgym.make("search-qa", qa_files=qa_files, corpus=str(search_r1_files / "corpus.jsonl"), topk=1)
    assert env.unwrapped.splits == ("train", "test") and env.unwrapped.task_ids("test") == [0]
    actions, reward, info = play_expert(env, 0, split="test")
    assert actions == ["<search>what is the capital of france?</search>", "<answer>Paris</answer>"]
    assert reward == 1.0 and "task_type" not in info and info["anchor"] == ("1",)


def test_observations_stay_inside_the_observation_space(tmp_path):
    # Real corpora and questions carry no-break spaces and characters beyond the BMP (math letters,
    # emoji), and an answer is echoed back: none may leave the declared Text space.
    (tmp_path / "corpus.jsonl").write_text(
        json.dumps({"id": "0", "contents": "Nile\nThe Nile\u00a0is a river in Africa \U0001d465."}) + "\n"
    )
    (tmp_path / "qa.jsonl").write_text(
        json.dumps({"question": "where is the\u00a0nile \U0001f30d?", "golden_answers": ["Africa"]}) + "\n"
    )
    env = agentgym.make(
        "search-qa", qa_files=str(tmp_path / "qa.jsonl"), corpus=str(tmp_path / "corpus.jsonl")
    )
    space = env.observation_space
    question = env.reset(options={"task_id": 0})[0]
    documents = env.step("<search>nile</search>")[0]
    verdict = env.step("<answer>Africa \U0001f642</answer>")[0]
    env.reset(options={"task_id": 0})
    long_answer = "x" * (space.max_length - 20)
    long_verdict, reward, terminated, _, info = env.step(f"<answer>{long_answer}</answer>")
    shown = {"question": question, "documents": documents, "verdict": verdict, "long verdict": long_verdict}
    assert [name for name, text in shown.items() if text not in space] == []
    assert question == "Question: where is the nile  ?" and "The Nile is a river in Africa" in documents
    assert terminated and reward == 0.0 and info["answer"] == long_answer  # info keeps the whole answer


def test_the_oracle_answers_after_a_search_that_finds_nothing(search_r1_files):
    # No document shares a term with this question: the oracle must still answer on its next turn.
    (search_r1_files / "unmatched.jsonl").write_text(
        json.dumps({"question": "who wrote hamlet?", "golden_answers": ["Shakespeare"]}) + "\n"
    )
    env = agentgym.make(
        "search-qa",
        qa_files=str(search_r1_files / "unmatched.jsonl"),
        corpus=str(search_r1_files / "corpus.jsonl"),
    )
    actions, reward, info = play_expert(env, 0)
    assert actions == ["<search>who wrote hamlet?</search>", "<answer>Shakespeare</answer>"]
    assert reward == 1.0 and info["won"]


def test_a_single_qa_file_may_be_a_path(search_r1_files):
    env = SearchQAEnv(qa_files=search_r1_files / "test.jsonl", corpus=str(search_r1_files / "corpus.jsonl"))
    assert env.splits == ("test",)
    assert env.reset(options={"task_id": 0})[1]["gold"] == ["Paris"]


def test_qa_files_without_a_split_are_refused(search_r1_files):
    with pytest.raises(AgentGymError, match="qa_files names no file"):
        SearchQAEnv(qa_files={}, corpus=str(search_r1_files / "corpus.jsonl"))


def test_a_generated_world_option_beside_your_own_questions_is_refused(search_r1_files):
    # qa_files= replaces the generated world: its options would otherwise be ignored without a word.
    with pytest.raises(AgentGymError, match=r"knowledge_base= .*generated world.* qa_files="):
        SearchQAEnv(
            qa_files=search_r1_files / "test.jsonl",
            corpus=str(search_r1_files / "corpus.jsonl"),
            knowledge_base={"seed": 1},
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"qa_files": "qa.jsonl"}, "need documents to search"),
        ({"corpus": "corpus.jsonl"}, "pass qa_files= too"),
        ({"reward": "accuracy"}, "reward must be 'em' or 'f1'"),
        ({"topk": 0}, "topk must be a positive integer"),
        ({"knowledge_base": {"persons": 10}}, "unknown option.s. persons; accepted: seed, countries"),
    ],
)
def test_inconsistent_options_are_refused(kwargs, message):
    with pytest.raises(AgentGymError, match=message):
        SearchQAEnv(**kwargs)


def test_the_env_searches_through_a_retrieval_server(tmp_path, free_port):
    generate_knowledge_base().write_corpus(tmp_path / "kb.jsonl")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "agentgym", "serve", "retriever", "--index", str(tmp_path / "index")]
    command += ["--corpus", str(tmp_path / "kb.jsonl"), "--port", str(port)]
    with (tmp_path / "server.log").open("w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_ready(url, timeout=120, process=server)
            local, remote = agentgym.make("search-qa"), agentgym.make("search-qa", retriever=url)
            for task_id in range(5):
                local_run, remote_run = play_expert(local, task_id), play_expert(remote, task_id)
                assert remote_run == local_run and remote_run[1] == 1.0
        finally:
            server.terminate()
            server.wait(timeout=30)
