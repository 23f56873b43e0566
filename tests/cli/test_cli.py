"""The agentgym command as a user runs it: exit codes, one-line errors, files written."""

import json
import sys
from pathlib import Path

import pytest
from toy_envs import KeyDoorEnv

import agentgym
from agentgym.core import task_index
from agentgym.policies import ExpertPolicy
from agentgym.trajectory import Step, Trajectory, write_jsonl


def test_envs_lists_registered_environments(agentgym_cli):
    code, out, _ = agentgym_cli("envs")
    assert code == 0
    assert "test-keydoor" in out and "Find the key" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "--env", "test-keydor"], "unknown environment 'test-keydor'. Did you mean 'test-keydoor'?"),
        (
            ["eval", "--env", "test-keydoor", "--policy", "openai:localhost"],
            "bad policy spec 'openai:localhost'",
        ),
        (
            ["eval", "--env", "test-keydoor", "--policy", "exprt"],
            "unknown policy 'exprt'. Did you mean 'expert'?",
        ),
        (
            ["eval", "--env", "test-keydoor", "--attempts", "0"],
            "attempts: Input should be greater than or equal to 1",
        ),
        (
            ["eval", "--env", "test-keydoor", "sampling.temprature=1"],
            "sampling.temprature: Extra inputs are not permitted",
        ),
        (["check-env", "nope"], "unknown environment 'nope'"),
    ],
)
def test_user_mistakes_print_one_line_without_traceback(agentgym_cli, args, message):
    code, out, err = agentgym_cli(*args)
    assert code == 2
    assert message in " ".join(err.split())
    assert "Traceback" not in out + err
    assert len(err.strip().splitlines()) <= 3  # one logical line, possibly wrapped by the terminal width


def test_eval_writes_metrics_with_the_documented_fields(agentgym_cli, tmp_path):
    code, out, _ = agentgym_cli(
        "eval",
        "--env",
        "test-keydoor",
        "--policy",
        "expert",
        "--episodes",
        "3",
        "--attempts",
        "2",
        "--out",
        str(tmp_path),
    )
    assert code == 0, out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["success_rate"] == 1.0 and metrics["pass@2"] == 1.0 and metrics["episodes"] == 6
    assert {"mean_score", "mean_steps", "valid_action_ratio", "pass@1"} <= set(metrics)
    assert len((tmp_path / "traces.jsonl").read_text().splitlines()) == 6
    code, out, _ = agentgym_cli("view", str(tmp_path))
    assert code == 0 and "6 episodes, 6 won (100.0%)" in " ".join(out.split())


def test_eval_dry_run_prints_the_resolved_config(agentgym_cli, tmp_path):
    code, out, _ = agentgym_cli(
        "eval", "--env", "test-keydoor", "--dry-run", "sampling.temperature=0.7", "--out", str(tmp_path)
    )
    assert code == 0
    assert "temperature: 0.7" in out and "env: test-keydoor" in out
    assert not (tmp_path / "metrics.json").exists()


def _train_config(agentgym_cli, *args: str) -> dict:
    import yaml

    code, out, err = agentgym_cli("train", "--dry-run", *args)
    assert code == 0, err
    return yaml.safe_load(out)


def test_train_starts_from_the_recipe_of_the_environment_in_the_config_file(agentgym_cli, tmp_path):
    (tmp_path / "run.yaml").write_text("env: search-qa\niterations: 3\n")
    config = _train_config(agentgym_cli, "--config", str(tmp_path / "run.yaml"))
    assert (config["env"], config["algo"], config["iterations"]) == ("search-qa", "igpo", 3)


def test_train_keeps_recipe_estimator_settings_only_for_the_recipe_algorithm(agentgym_cli):
    recipe = _train_config(agentgym_cli, "--env", "webshop")
    assert recipe["algo"] == "gigpo" and recipe["estimator"]["invalid_penalty"] > 0
    assert _train_config(agentgym_cli, "--env", "webshop", "--algo", "hgpo")["estimator"] == {}
    assert _train_config(agentgym_cli, "--env", "webshop", "algo=grpo")["estimator"] == {}
    chosen = _train_config(agentgym_cli, "--env", "webshop", "--algo", "hgpo", "estimator.K=3")
    assert chosen["estimator"] == {"K": 3}


@pytest.mark.parametrize("env", ["webshop", "alfworld", "search-qa"])
def test_recipes_pin_the_thread_count_their_numbers_were_measured_with(agentgym_cli, env):
    assert _train_config(agentgym_cli, "--env", env)["model"]["threads"] == 2
    assert _train_config(agentgym_cli, "--env", env, "model.threads=8")["model"]["threads"] == 8


def _episode(task_id: int, won: bool, observation: str) -> Trajectory:
    step = Step(
        t=0,
        observation=observation,
        completion="<action>click[1]</action>",
        action="click[b0abc]",
        reward=float(won),
    )
    return Trajectory(
        env_id="webshop",
        task_id=task_id,
        split="test",
        group=f"test/{task_id}",
        task=f"instruction {task_id}",
        steps=[step],
        won=won,
        score=float(won),
    )


@pytest.fixture
def traces(tmp_path) -> Path:
    page = "Instruction: [SEP] [bold]not markup[/bold] [SEP] " + "x" * 100
    write_jsonl(tmp_path / "traces.jsonl", [_episode(7, True, "search page"), _episode(8, False, page)])
    return tmp_path / "traces.jsonl"


def test_view_lists_the_episodes_and_filters_them(agentgym_cli, traces):
    code, out, _ = agentgym_cli("view", str(traces))
    text = " ".join(out.split())
    assert code == 0 and "2 episodes, 1 won (50.0%), mean score 0.500; showing 2" in text
    assert "instruction 7" in text and "instruction 8" in text
    code, out, _ = agentgym_cli("view", str(traces.parent), "--failed")
    assert code == 0 and "showing 1" in out and "instruction 8" in out and "instruction 7" not in out
    code, out, _ = agentgym_cli("view", str(traces), "--task", "7")
    assert code == 0 and "instruction 7" in out and "instruction 8" not in out


def test_view_failed_means_not_won_and_says_so(agentgym_cli, traces):
    code, out, _ = agentgym_cli("view", "--help")
    assert code == 0 and "--failed lists the episodes the agent did not win, whatever the reason" in " ".join(
        out.split()
    )
    crashed = _episode(9, False, "o").model_copy(update={"failed": True, "error": "env died"})
    write_jsonl(traces, [crashed], append=True)
    code, out, _ = agentgym_cli("view", str(traces), "--failed")
    assert code == 0 and "showing 2" in out and "instruction 8" in out and "env error" in out


def test_view_shows_one_episode_step_by_step_as_written(agentgym_cli, traces):
    code, out, _ = agentgym_cli("view", str(traces), "--episode", "1", "--max-chars", "60")
    text = " ".join(out.split())
    assert code == 0 and "not won, score 0.000, 1 steps" in text
    assert "Instruction: [SEP] [bold]not markup[/bold] [SEP] xxxxx" in text  # printed, not read as markup
    assert "(89 more characters)" in text
    assert "action: click[b0abc]" in text and "model wrote: <action>click[1]</action>" in text


@pytest.mark.parametrize(
    ("target", "args", "message"),
    [
        ("missing.jsonl", [], "missing.jsonl does not exist"),
        ("run", [], "no traces.jsonl in"),
        ("run", [], "trace files there: eval/before_rl.jsonl"),
        ("traces.jsonl", ["--episode", "2"], "has episodes 0-1, not 2"),
        ("metrics.jsonl", [], "is not a traces file"),
        ("empty.jsonl", [], "empty.jsonl holds no episodes"),
    ],
)
def test_view_mistakes_are_one_line_errors(agentgym_cli, traces, target, args, message):
    (traces.parent / "metrics.jsonl").write_text('{"iteration": 0}\n{"iteration": 1}\n')
    (traces.parent / "empty.jsonl").write_text("")
    (traces.parent / "run" / "eval").mkdir(parents=True)
    (traces.parent / "run" / "eval" / "before_rl.jsonl").write_text(traces.read_text())
    code, _, err = agentgym_cli("view", str(traces.parent / target), *args)
    assert code == 2 and message in " ".join(err.split())


def test_check_env_exit_codes(agentgym_cli):
    assert agentgym_cli("check-env", "test-keydoor", "--fuzz-steps", "50")[0] == 0
    code, out, _ = agentgym_cli("check-env", "test-invalid-moves", "--fuzz-steps", "50")
    assert code == 1 and "FAIL" in out


def test_play_takes_numbers_actions_and_hints(agentgym_cli):
    # Task 1000 starts in the vault (admissible: 1 go hall, 2 go kitchen) with the key in the kitchen
    # (then: 3 take key, 3 open door) and the goal behind the door: "go cellar".
    code, out, _ = agentgym_cli(
        "play",
        "--env",
        "test-keydoor",
        "--split",
        "test",
        "--task-id",
        "1000",
        "--seed",
        "0",
        stdin=":hint\nfly [away]\n2\n3\n3\ngo cellar\n:quit\n",
    )
    assert code == 0
    assert "expert: go kitchen" in out
    assert "task 1000 [test]" in out
    assert "invalid action: 'fly [away]' is not possible here" in out
    assert "episode won after 5 steps" in out


def test_play_asks_for_the_query_of_a_numbered_search_template(agentgym_cli):
    # WebShop's search page offers the template "search[<query>]": its number asks for the query.
    code, out, _ = agentgym_cli(
        "play", "--env", "webshop", "--split", "test", "--task-id", "0", stdin="1\ndesk lamp black\n:quit\n"
    )
    assert code == 0
    assert "Total results: 50" in out


class CheckedKeyDoorEnv(KeyDoorEnv):
    """Rejects an unknown split or task id with a ValueError, as the built-in environments do."""

    def reset(self, *, seed=None, options=None):
        options = dict(options or {})
        split = options.get("split", "train")
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}; use one of {', '.join(self.splits)}")
        if "task_id" in options:
            ids = self.task_ids(split)
            options["task_id"] = ids[task_index(options["task_id"], len(ids), f"split {split!r}")]
        return super().reset(seed=seed, options=options)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task-id", "99"], "task_id 99 is not in split 'train': ids are 0..4"),
        (["--split", "bogus"], "unknown split 'bogus'; use one of train, test"),
    ],
)
def test_play_with_a_task_the_environment_does_not_have_is_a_one_line_error(agentgym_cli, args, message):
    agentgym.register("test-checked-keydoor", CheckedKeyDoorEnv, max_episode_steps=20)
    try:
        code, out, err = agentgym_cli("play", "--env", "test-checked-keydoor", *args, stdin=":quit\n")
    finally:
        agentgym.deregister("test-checked-keydoor")
    assert code == 2
    assert message in " ".join(err.split())
    assert "Traceback" not in out + err


class ClosingKeyDoorEnv(KeyDoorEnv):
    """Counts its closes: a served environment frees its server session there."""

    closes = 0

    def close(self):
        ClosingKeyDoorEnv.closes += 1
        super().close()


def test_play_left_with_ctrl_c_closes_the_environment(agentgym_cli, monkeypatch):
    from agentgym.cli import play

    def ctrl_c(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(play.console, "input", ctrl_c)
    ClosingKeyDoorEnv.closes = 0
    agentgym.register("test-closing-keydoor", ClosingKeyDoorEnv, max_episode_steps=20)
    try:
        code, _, _ = agentgym_cli("play", "--env", "test-closing-keydoor")
    finally:
        agentgym.deregister("test-closing-keydoor")
    assert code == 130
    assert ClosingKeyDoorEnv.closes == 1


def _readme_block(after: str) -> str:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    start = readme.index(after)
    return readme[start : readme.index("```", start)]


def test_the_readme_environment_registers_and_passes_check_env(agentgym_cli, tmp_path, monkeypatch):
    (tmp_path / "guess_env.py").write_text(_readme_block("# guess_env.py"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    try:
        code, out, err = agentgym_cli("--import", "guess_env", "check-env", "guess-number")
        assert code == 0, out + err
        assert "FAIL" not in out and "pass" in out
    finally:
        sys.modules.pop("guess_env", None)
        agentgym.deregister("guess-number")


def test_a_module_that_does_not_import_is_a_one_line_error(agentgym_cli):
    code, _, err = agentgym_cli("--import", "no_such_module_here", "envs")
    assert code == 2
    assert "--import no_such_module_here" in err and "Traceback" not in err


def test_serve_env_without_the_server_extra_says_what_to_install(agentgym_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "agentgym.tools.env_server", None)  # as if fastapi were missing
    code, out, err = agentgym_cli("serve", "env", "--env", "test-keydoor")
    # exit 2 as for every user-facing error; the bracketed extra is printed, not read as markup
    assert code == 2 and "pip install 'agentgym[server]'" in " ".join((out + err).split())


@pytest.mark.parametrize(
    ("command", "shown"),
    [(["eval"], "task split (default: test)"), (["train"], "environment id (default: webshop)")],
)
def test_help_shows_the_defaults_it_names(agentgym_cli, command, shown):
    # Rich reads "[default: ...]" as markup and drops it; the help must print it.
    code, out, _ = agentgym_cli(*command, "--help")
    assert code == 0 and shown in " ".join(out.replace("│", " ").split())


class ClosingExpert(ExpertPolicy):
    closed = 0

    def close(self):
        ClosingExpert.closed += 1


def test_eval_closes_the_policy_it_made(agentgym_cli, tmp_path, monkeypatch):
    # A vLLM engine or an HTTP client the command made would otherwise stay open until exit.
    monkeypatch.setattr("agentgym.cli.eval.make_policy", lambda spec, **context: ClosingExpert())
    ClosingExpert.closed = 0
    code, out, _ = agentgym_cli("eval", "--env", "test-keydoor", "--episodes", "1", "--out", str(tmp_path))
    assert code == 0, out
    assert ClosingExpert.closed == 1


@pytest.mark.parametrize(
    "args",
    [
        ["check-env", "test-keydoor", "--seed", "-1"],
        ["check-env", "test-keydoor", "--fuzz-steps", "-5"],
        ["play", "--env", "test-keydoor", "--seed", "-1"],
    ],
)
def test_a_negative_seed_or_count_is_a_usage_error(agentgym_cli, args):
    # gymnasium refuses a negative seed at reset: check-env would blame the environment for it
    # (every check FAIL, exit 1), play would die with a traceback.
    code, out, err = agentgym_cli(*args, stdin=":quit\n")
    assert code == 2
    assert "FAIL" not in out and "Traceback" not in out + err
    assert "greater than or equal to 0" in " ".join(err.split())


def test_play_input_ending_at_a_placeholder_prompt_leaves_as_at_the_action_prompt(agentgym_cli):
    # Ctrl-D (or piped input running out) while asked for the <query> of "search[<query>]".
    code, out, err = agentgym_cli(
        "play", "--env", "webshop", "catalogue=small", "--split", "test", "--task-id", "0", stdin="1\n"
    )
    assert code == 0
    assert "Aborted" not in out + err


@pytest.mark.parametrize(
    ("args", "typed", "exit_code"), [([], "²\n:quit\n", 0), (["--task-id", "²"], ":quit\n", 2)]
)
def test_play_takes_a_superscript_digit_as_text_not_a_number(agentgym_cli, args, typed, exit_code):
    # "²".isdigit() is True but int("²") raises: the action goes to the environment, the task id
    # to its reset, each to be refused there (an invalid action; a one-line error).
    code, out, err = agentgym_cli("play", "--env", "test-keydoor", *args, stdin=typed)
    assert code == exit_code
    assert "Traceback" not in out + err
    assert "invalid action" in out if exit_code == 0 else "error:" in err


class BracketErrorEnv(KeyDoorEnv):
    """Crashes on garbage with a message that looks like rich markup."""

    message = ""

    def step(self, action: str):
        if action.strip().lower() not in self._actions():
            raise ValueError(BracketErrorEnv.message)
        return super().step(action)


@pytest.mark.parametrize("message", ["press click[buy now] instead", "cannot read [/data/items.json]"])
def test_check_env_prints_the_environments_words_as_written(agentgym_cli, message):
    # "[buy now]" would be read as a style and dropped; "[/data/...]" as a closing tag, a crash.
    BracketErrorEnv.message = message
    agentgym.register("test-bracket-error", BracketErrorEnv, max_episode_steps=20)
    try:
        code, out, err = agentgym_cli("check-env", "test-bracket-error", "--fuzz-steps", "50")
    finally:
        agentgym.deregister("test-bracket-error")
    assert code == 1 and "Traceback" not in out + err
    assert message in " ".join(out.replace("│", " ").split())


def test_eval_prints_the_split_and_the_run_directory_as_written(agentgym_cli, tmp_path):
    # "[test]" and "[run1]" are a split and a folder name, not styles to drop.
    out_dir = tmp_path / "[run1]"
    code, out, _ = agentgym_cli("eval", "--env", "test-keydoor", "--episodes", "1", "--out", str(out_dir))
    assert code == 0 and "eval test-keydoor [test]" in out
    assert "[run1]/metrics.json" in "".join(out.split())  # a long path wraps anywhere


class BracketDocEnv(KeyDoorEnv):
    """Moves with go[north] and take[key], as in the original game."""


def test_envs_prints_descriptions_and_import_errors_as_written(agentgym_cli, tmp_path, monkeypatch):
    # An environment whose optional dependency is missing says what to install, brackets included.
    (tmp_path / "needs_extra.py").write_text("raise ImportError(\"pip install 'mygym[gpu]'\")\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    agentgym.register("test-bracket-doc", BracketDocEnv)
    agentgym.register("test-needs-extra", "needs_extra:Env")
    try:
        code, out, err = agentgym_cli("envs")
    finally:
        agentgym.deregister("test-bracket-doc")
        agentgym.deregister("test-needs-extra")
    text = "".join(out.replace("│", " ").split())  # cells wrap anywhere: compare without spaces
    assert code == 0 and "Traceback" not in out + err
    assert "go[north]andtake[key]" in text and "pipinstall'mygym[gpu]'" in text


@pytest.mark.parametrize("command", ["train", "eval"])
def test_a_dry_run_prints_yaml_that_reads_back_whatever_its_lines(command, agentgym_cli, tmp_path):
    """Long values stay on their line, and brackets are YAML, not console markup."""
    import yaml

    out_dir = tmp_path / ("a-very-long-directory-name-" * 4) / "run"
    prompt = "Answer with [one] word, " * 6
    args = ["--env", "test-keydoor", "--dry-run", "--out", str(out_dir), f"agent.system_prompt={prompt}"]
    code, out, err = agentgym_cli(command, *args)
    assert code == 0, err
    config = yaml.safe_load(out)
    assert (config["out"], config["agent"]["system_prompt"]) == (str(out_dir), prompt)
