"""Each cleaning step on real IMDB snippets (input -> expected output), and the dataset-level pass."""

import pytest
from datasets import Dataset
from omegaconf import OmegaConf

from src.datamodules.cleaning import STEPS, clean_dataset, clean_text
from src.schemas import CleaningConfig

# (step, real IMDB snippet, expected output of that step alone)
CASES = [
    (
        "html",
        "Hand in toilet? <i>Trainspotting</i>. Masturbation? Hmm.",
        "Hand in toilet?  Trainspotting . Masturbation? Hmm.",
    ),
    (
        "html",
        "watching this bad movie.<br /><br />I almost didn't finish",
        "watching this bad movie.  I almost didn't finish",
    ),
    (
        "html",
        "in the bath of Alt&#305;oklar, as it is promised",
        "in the bath of Altıoklar, as it is promised",
    ),
    ("html", "as an Agent&#8230; Ankush falls in love", "as an Agent… Ankush falls in love"),
    ("unicode_nfkc", "It's about 8½ minutes too long.", "It's about 81\u20442 minutes too long."),
    ("unicode_nfkc", "as an Agent… Ankush", "as an Agent... Ankush"),
    (
        "control_chars",
        "Eternal Vigilance blah blah blah\x85\x85, but in truth",
        "Eternal Vigilance blah blah blah, but in truth",
    ),
    ("control_chars", "to get to the point\xad. I watched it", "to get to the point. I watched it"),
    ("control_chars", "a pathetic\tmovie\nindeed", "a pathetic movie indeed"),
    (
        "urls",
        "near you. http://rateyourmusic.com/list/Fedor8/150_worst_cases_of_nepotism/ Enjoy",
        "near you.   Enjoy",
    ),
    ("urls", "see www.imdb.com/title/tt0111161 for more", "see   for more"),
    (
        "emails",
        "the previous commenter's Tom (bighouseaz@yahoo.com). The Zatoichi series",
        "the previous commenter's Tom ( ). The Zatoichi series",
    ),
    ("emails", "Alexander Quaresma - DeusExMachina529@aol.com", "Alexander Quaresma -  "),
    (
        "special_chars",
        "how disconcerting to see a ® after Laurel and Hardy",
        "how disconcerting to see a  after Laurel and Hardy",
    ),
    ("special_chars", "The Tampax® box was the funniest", "The Tampax box was the funniest"),
    (
        "repeated_punctuation",
        "give it to these people.....there's just no comparison!!!",
        "give it to these people.there's just no comparison!",
    ),
    ("repeated_punctuation", "a few years ago.. I've watched it", "a few years ago. I've watched it"),
    (
        "lowercase",
        "The Zatoichi series is a great character study",
        "the zatoichi series is a great character study",
    ),
    (
        "stop_words",
        "The Zatoichi series is a great character study.",
        " Zatoichi series   great character study.",
    ),
    ("stop_words", "I almost didn't finish watching this bad movie", "  didn't finish watching  bad movie"),
    (
        "whitespace",
        "  watching this bad movie.  I almost   didn't finish \n",
        "watching this bad movie. I almost didn't finish",
    ),
]


@pytest.mark.parametrize(
    ("step", "text", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_each_step_on_imdb_snippets(step: str, text: str, expected: str) -> None:
    assert STEPS[step](text) == expected


def test_every_step_has_a_config_switch_and_a_case() -> None:
    assert list(STEPS) == list(OmegaConf.structured(CleaningConfig))
    assert {case[0] for case in CASES} == set(STEPS)


def test_default_pipeline_on_a_real_review() -> None:
    text = (
        "Awww.<br /><br />Here's the breakdown:<br /><br />The Good:<br />Nothing!!!! "
        "See http://rogerebert.suntimes.com/ or mail me@aol.com\x85"
    )
    expected = "Awww. Here's the breakdown: The Good: Nothing! See or mail"
    assert clean_text(text, OmegaConf.structured(CleaningConfig)) == expected


def test_switched_off_steps_leave_text_alone() -> None:
    off = OmegaConf.structured(CleaningConfig(**{name: False for name in STEPS}))
    text = "Great  <br />movie!!! www.x.com"
    assert clean_text(text, off) == text


def test_clean_dataset_counts_changed_and_drops_empty_texts() -> None:
    cfg = OmegaConf.structured(CleaningConfig(stop_words=True))
    dataset = Dataset.from_dict(
        {"text": ["A fine film.", "<br /><br />", "It is what it is", "ok"], "label": [1, 0, 0, 1]}
    )
    cleaned, stats = clean_dataset(dataset, cfg)
    assert cleaned["text"] == ["fine film.", "ok"]
    assert cleaned["label"] == [1, 1]
    assert (stats.rows, stats.changed, stats.dropped) == (4, 3, 2)
