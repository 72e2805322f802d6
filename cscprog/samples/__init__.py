"""Sample data written by the cscprog team, shipped with the package.

* ``annotated_en``: 24 strategy-annotated English dialogues across the 8 CSConv domains.
* ``annotated_zh``: 12 strategy-annotated Chinese dialogues.
* ``raw``: 12 raw, unannotated call transcripts (input of the rewriting pipeline).
* ``profiles``: 20 customer profiles (input of role-play synthesis).

Example:
    ```python
    from cscprog.samples import load_sample, load_profiles

    dialogues = load_sample("annotated_en")
    profiles = load_profiles()
    ```
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from cscprog.data import Dialogue, Profile, read_dialogues, read_profiles

SAMPLES = ("annotated_en", "annotated_zh", "raw")


def sample_path(name: str) -> Path:
    """Path of a packaged sample file (``annotated_en``, ``annotated_zh``, ``raw``, ``profiles``).

    Raises:
        ValueError: unknown sample name.
    """
    if name not in (*SAMPLES, "profiles"):
        raise ValueError(f"unknown sample {name!r}; samples: {', '.join((*SAMPLES, 'profiles'))}")
    return Path(str(resources.files("cscprog.samples").joinpath(f"{name}.jsonl")))


def load_sample(name: str) -> list[Dialogue]:
    """The dialogues of one packaged sample, or of ``"annotated"`` (English and Chinese together)."""
    if name == "annotated":
        return load_sample("annotated_en") + load_sample("annotated_zh")
    return read_dialogues(sample_path(name)).dialogues


def load_profiles() -> list[Profile]:
    """The 20 packaged customer profiles."""
    return read_profiles(sample_path("profiles"))
