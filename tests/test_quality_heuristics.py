"""Heuristic quality rules (Gopher / C4 / FineWeb): each rule on texts that trip it and one that
does not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crawlmix.quality import (
    RULE_FAMILIES,
    SIGNAL_COLUMNS,
    HeuristicThresholds,
    all_rule_columns,
    heuristic_signals,
    rule_columns,
)

GOOD = "\n".join([
    "Choosing a Backup Strategy",
    "A good backup strategy starts with a clear idea of what has to be restored and how quickly. "
    "Files that change every day need frequent copies, while archives that never change can be "
    "copied once and checked from time to time.",
    "Most administrators keep at least three copies of important data. Two of them live on "
    "different kinds of storage, and one is kept away from the building, so that a fire or a "
    "flood does not destroy every copy at once.",
    "Testing the restore procedure matters as much as taking the copies. A backup that has never "
    "been restored is only a hope, and the middle of an outage is a poor moment to discover that "
    "the archive was empty.",
    "Finally, write the procedure down. The person who restores the system may not be the person "
    "who designed it, and a short checklist with the commands and their order saves hours.",
])

LONG_VARIED = " ".join(f"word{i % 997}x" for i in range(100_050))

# rule column -> texts that must FAIL it (the GOOD text passes every rule).
FAILING: dict[str, list[str]] = {
    "pass_gopher_word_count": ["The cat sat on the mat and looked at the door. It was shut.",
                               LONG_VARIED],
    "pass_gopher_mean_word_len": [
        ("I am on it. He is at the car. We go to it. So do I. " * 8).strip(),
        " ".join(["Internationalization-and-localization-considerations."] * 3
                 + ["Notwithstanding-the-aforementioned-incomprehensibilities."] * 60)],
    "pass_gopher_symbol_ratio": [GOOD + "\n" + " ".join(f"#tag{i}" for i in range(40)),
                                 " ".join(w + ("..." if i % 5 == 0 else "") for i, w in enumerate(GOOD.split()))],
    "pass_gopher_bullet_lines": ["\n".join(f"- The item number {i} is one of the things that "
                                           f"we have to do today." for i in range(12)),
                                 "\n".join(f"• Point {i} of the plan and the budget." for i in
                                           range(12))],
    "pass_gopher_ellipsis_lines": ["\n".join(f"Read the story of the man and the dog number {i} "
                                             "and what happened next..." for i in range(10))],
    "pass_gopher_alpha_words": [
        GOOD + "\n" + " ".join(f"{i} {i * 3.5:.1f} {i * 7}% |" for i in range(60))],
    "pass_gopher_stop_words": [
        "Cats sleep. Dogs bark loudly. Birds fly south each autumn. Fish swim. Horses run fast "
        "across open fields. Bees make honey. Frogs jump. Owls hunt mice. Cows graze. Wolves "
        "howl. Goats climb rocky hills. Ducks swim. Eagles soar high above mountains. Ants carry "
        "food home. Bats hunt insects. Sheep follow shepherds. Deer hide in forests. Snakes "
        "shed skin. Lions roar."],
    "pass_gopher_dup_lines": [GOOD + "\n" + "\n".join(["Subscribe to our newsletter today."] * 6)],
    "pass_gopher_top_ngram": [
        GOOD + "\n" + " ".join(["buy now"] * 60) + "."],
    "pass_gopher_dup_ngram": [GOOD + " " + GOOD.replace("\n", " ")],
    "pass_c4_bad_lines": [GOOD + "\n" + "\n".join([
        "This site uses cookies to improve your experience.",
        "Please enable JavaScript to view the comments.",
        "Read our privacy policy and terms of use."])],
    "pass_c4_fatal_patterns": [GOOD + "\nLorem ipsum dolor sit amet, consectetur adipiscing."],
    "pass_c4_min_sentences": [
        "When the system starts it reads the configuration file and then it checks the disks and "
        "the network and the clock and it starts the services one after the other and it writes "
        "a line to the log for each of them so that the administrator can see what happened and "
        "in which order the services came up"],
    "pass_fineweb_line_punct": ["\n".join(
        f"The history of the town and the river that runs through it, part {i}" for i in
        range(10)) + " and that is the end of the story of the town. It was long. It was old. "
        "It was cold. It was good."],
    "pass_fineweb_short_lines": [GOOD + "\n" + "\n".join(
        ["Home", "About us", "Our team", "Careers", "Contact", "Blog", "Press", "Partners",
         "Support", "Docs", "Status", "Login"])],
    "pass_fineweb_dup_line_chars": [
        GOOD + "\n" + "\n".join([GOOD.splitlines()[1]] * 1)],
}


@pytest.fixture(scope="module")
def good_row() -> pd.Series:
    return heuristic_signals([GOOD]).iloc[0]


def test_good_text_passes_everything(good_row: pd.Series) -> None:
    failed = [c for c in all_rule_columns() if not good_row[c]]
    assert failed == []
    assert good_row["pass_all"]
    for fam in RULE_FAMILIES:
        assert good_row[f"pass_{fam}"]


def test_every_rule_has_a_failing_case() -> None:
    assert set(FAILING) == set(all_rule_columns())


@pytest.mark.parametrize("rule", all_rule_columns())
def test_rule_trips_and_passes(rule: str) -> None:
    df = heuristic_signals([GOOD] + FAILING[rule])
    assert bool(df.loc[0, rule]), f"{rule} should pass on the good text"
    for i in range(1, len(df)):
        assert not bool(df.loc[i, rule]), f"{rule} should fail on case {i}: {df.iloc[i].to_dict()}"
        family = rule.split("_")[1]
        assert not bool(df.loc[i, f"pass_{family}"])
        assert not bool(df.loc[i, "pass_all"])


def test_columns_and_types() -> None:
    df = heuristic_signals([GOOD, "", None])  # type: ignore[list-item]
    cols = rule_columns()
    assert tuple(cols) == RULE_FAMILIES
    assert all(c.startswith(f"pass_{fam}_") for fam, cs in cols.items() for c in cs)
    for c in SIGNAL_COLUMNS:
        assert c in df.columns and np.issubdtype(df[c].dtype, np.number)
    for c in all_rule_columns() + [f"pass_{f}" for f in RULE_FAMILIES] + ["pass_all"]:
        assert df[c].dtype == bool
    assert len(df) == 3
    assert not df.loc[1, "pass_all"] and df.loc[1, "n_words"] == 0


def test_empty_input() -> None:
    df = heuristic_signals([])
    assert len(df) == 0
    assert "pass_all" in df.columns and set(all_rule_columns()) <= set(df.columns)


def test_signal_values(good_row: pd.Series) -> None:
    assert good_row["n_words"] == len(GOOD.split())
    assert good_row["n_lines"] == 5
    assert good_row["n_sentences"] == 8
    assert good_row["stop_words"] >= 10
    assert 0.0 <= good_row["short_line_frac"] <= 1.0
    # 4 of 5 lines end in terminal punctuation (the title does not)
    assert good_row["terminal_punct_line_frac"] == pytest.approx(0.8)


def test_thresholds_are_configurable() -> None:
    text = "Too short. But fine. Really fine. Yes. Indeed."
    strict = heuristic_signals([text]).loc[0, "pass_gopher_word_count"]
    loose = heuristic_signals([text], HeuristicThresholds(min_words=5)).loc[
        0, "pass_gopher_word_count"]
    assert not strict and loose


def test_javascript_mention_alone_does_not_flag() -> None:
    text = GOOD + "\nThe browser runs JavaScript code that the page loads from the server."
    assert heuristic_signals([text]).loc[0, "pass_c4_bad_lines"]
