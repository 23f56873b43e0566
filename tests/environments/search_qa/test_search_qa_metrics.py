import pytest

from agentgym.environments.search_qa import exact_match, f1_score, normalize_answer


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("The Orlen Institute.", "orlen institute"),
        ("  a   Tale of  an Apple ", "tale of apple"),
        ("Theory, Anthem & Bandana!", "theory anthem bandana"),  # articles only as whole words
        ("1,873", "1873"),
        ("", ""),
    ],
)
def test_normalisation_is_squad_style(text, normalised):
    assert normalize_answer(text) == normalised


@pytest.mark.parametrize(
    ("prediction", "golds", "em", "f1"),
    [
        ("Tarsh", ["Tarsh"], 1.0, 1.0),
        ("the tarsh.", ["Tarsh"], 1.0, 1.0),
        ("Tarsh", ["Quenmark", "TARSH"], 1.0, 1.0),  # the best gold answer counts
        ("Orlen", ["Orlen Institute"], 0.0, 2 / 3),  # p = 1/1, r = 1/2 -> 2 * 0.5 / 1.5 = 2/3
        ("Orlen Institute, Tarsh", ["Orlen Institute"], 0.0, 0.8),  # p = 2/3, r = 2/2 -> (4/3) / (5/3)
        ("Velmora Velmora", ["Velmora Quint"], 0.0, 0.5),  # one shared token counted once: p = 1/2, r = 1/2
        ("Quint Velmora", ["Velmora Quint"], 0.0, 1.0),  # F1 ignores order, EM does not
        ("1873", ["1874"], 0.0, 0.0),
        ("", ["Tarsh"], 0.0, 0.0),
        ("the", [""], 1.0, 1.0),  # both normalise to nothing
        ("Tarsh", [], 0.0, 0.0),
    ],
)
def test_exact_match_and_f1(prediction, golds, em, f1):
    assert exact_match(prediction, golds) == em
    assert f1_score(prediction, golds) == pytest.approx(f1)


@pytest.mark.parametrize(("prediction", "em", "f1"), [("Orlen Institute", 1.0, 1.0), ("Orlen", 0.0, 2 / 3)])
def test_a_single_gold_string_is_one_answer_not_its_letters(prediction, em, f1):
    # Search-R1's em_check accepts a bare string; scoring against its characters would give 0.
    assert exact_match(prediction, "Orlen Institute") == em
    assert f1_score(prediction, "Orlen Institute") == pytest.approx(f1)
