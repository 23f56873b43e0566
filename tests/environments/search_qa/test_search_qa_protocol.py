import pytest

from agentgym.environments.search_qa import Action, format_information, parse_action
from agentgym.tools.retrieval import Hit


@pytest.mark.parametrize(
    ("completion", "action"),
    [
        ("<search>Velmora Quint</search>", Action("search", "Velmora Quint")),
        (
            "<think>I need her city.</think>\n<search>  Velmora Quint \n</search>",
            Action("search", "Velmora Quint"),
        ),
        ("<answer> Tarsh </answer>", Action("answer", "Tarsh")),
        # the first block wins, as in Search-R1's generation loop
        ("<answer>Tarsh</answer><search>more</search>", Action("answer", "Tarsh")),
        ("<search>a</search> and <search>b</search>", Action("search", "a")),
        ("<search>multi\nline</search>", Action("search", "multi\nline")),
        ("no tags at all", Action(None, error="no <search>...</search> or <answer>...</answer> block")),
        ("<search>never closed", Action(None, error="<search> is never closed with </search>")),
        (
            "<SEARCH>upper</SEARCH>",
            Action(None, error="no <search>...</search> or <answer>...</answer> block"),
        ),
        ("<search>x</answer>", Action(None, error="<search> is never closed with </search>")),
        ("<answer>   </answer>", Action(None, error="the <answer> block is empty")),
        ("<search></search>", Action(None, error="the <search> block is empty")),
    ],
)
def test_parse_action(completion, action):
    assert parse_action(completion) == action


def test_information_lists_documents_as_search_r1_does():
    hits = [Hit("1", "Tarsh\nTarsh is a city.", 2.0), Hit("2", "No text line", 1.0)]
    assert format_information(hits) == (
        "<information>Doc 1(Title: Tarsh) Tarsh is a city.\nDoc 2(Title: No text line) </information>"
    )
    assert format_information([]) == "<information>No document matches the query.</information>"
