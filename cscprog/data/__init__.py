"""Dialogues, profiles and scenarios; reading and writing them; learning-task views, splits and statistics."""

from cscprog.data.dialogue import (
    CUSTOMER,
    LANGUAGES,
    SUPPORTER,
    Dialogue,
    Language,
    Speaker,
    Turn,
    detect_language,
    render_transcript,
)
from cscprog.data.io import DialogueFile, read_dialogues, read_profiles, released_record, write_dialogues
from cscprog.data.profile import Profile, Scenario
from cscprog.data.splits import split_dialogues, split_of
from cscprog.data.stats import dataset_stats
from cscprog.data.views import dialogue_examples, next_turn_examples, turn_examples

__all__ = [
    "CUSTOMER",
    "LANGUAGES",
    "SUPPORTER",
    "Dialogue",
    "DialogueFile",
    "Language",
    "Profile",
    "Scenario",
    "Speaker",
    "Turn",
    "dataset_stats",
    "detect_language",
    "dialogue_examples",
    "next_turn_examples",
    "read_dialogues",
    "read_profiles",
    "released_record",
    "render_transcript",
    "split_dialogues",
    "split_of",
    "turn_examples",
    "write_dialogues",
]
