"""What the demo runs (:class:`DemoPlan`), on which data, and with which runtime configuration (:func:`demo_config`).

The plan is small on purpose: every LM call of the demo runs on the embedded local model by default (a few
seconds to tens of seconds a call on two CPU cores), so each stage handles a handful of items and each
held-out dialogue is cut after its first few supporter turns. Everything is chosen without randomness
(fixed ids, hash splits, seeded synthesis plans), so a second run asks the cache for exactly the same calls.

Example:
    ```python
    from cscprog.config import load_config
    from cscprog.demo.plan import DemoPlan, demo_config, held_out_splits

    config, notes = demo_config(load_config(), Path("cscprog-demo"), fresh=False)
    parts = held_out_splits(DemoPlan())   # {"train": [...], "dev": [...], "test": [...]}
    ```
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cscprog.config import LOCAL_MODEL, ROLEPLAY_ROLES, Config
from cscprog.data import LANGUAGES, Dialogue, split_dialogues
from cscprog.lm.local.engine import DEFAULT_MAX_TOKENS
from cscprog.lm.local.weights import resolve_model_file
from cscprog.roles import Role

__all__ = ["DEMO_LOCAL_SIZE", "SPLIT_SALT", "DemoPlan", "busy_machine", "demo_config", "held_out_splits",
           "provider_snippet", "truncate"]

DEMO_LOCAL_SIZE = "0.5b"
"""The embedded model the demo uses unless the configuration names one (the 1.5B is about 3x slower)."""

SPLIT_SALT = "cscprog-demo"
"""Salt of the hash split of the annotated samples into train / dev / test."""

SPLITS = {"train": 0.6, "dev": 0.2, "test": 0.2}

DEMO_ROLES: tuple[str, ...] = (Role.CLASSIFIER, *ROLEPLAY_ROLES, Role.JUDGE, Role.RESPONDER)
"""The roles whose completion limits the demo's notes state (the rewrite call's is :attr:`DemoPlan.rewrite_max_tokens`;
the rewriter's screen call has the engine's default)."""


@dataclass(frozen=True)
class DemoPlan:
    """How much each stage of the demo does.

    Attributes:
        raw_ids: Raw sample dialogues given to the rewriting pipeline (``raw-004`` and ``raw-011`` fail the rule
            pre-filter, so they cost no LM call and show that filter's reasons).
        classify_turns: Supporter turns of each rewrite the classifier re-annotates.
        synthesize: Role-play dialogues to synthesize (profiles x topics, seeded plan).
        max_utterances: Utterance cap of a synthesized dialogue.
        language: Language of the samples and profiles used (``en`` or ``zh``).
        dev_dialogues: Annotated dev dialogues (compile validation).
        test_dialogues: Annotated test dialogues (the base vs compiled evaluation).
        positions: Supporter turns kept per dev and test dialogue (the evaluated positions).
        train_positions: Supporter turns kept per training dialogue (short demos keep prompts small).
        demos: Labeled demos per predictor in the compiled program.
        attempts: Attempts per LM call at a usable output (parse failures, invalid labels).
        rewrite_max_tokens: Completion limit of the rewrite call, which writes a whole dialogue (the rewriter
            role's limit applies to its screen call).

    Example:
        ```python
        DemoPlan(synthesize=4, test_dialogues=3)
        ```
    """

    raw_ids: tuple[str, ...] = ("raw-001", "raw-004", "raw-011")
    classify_turns: int = 3
    synthesize: int = 2
    max_utterances: int = 3
    language: str = "en"
    dev_dialogues: int = 1
    test_dialogues: int = 2
    positions: int = 2
    train_positions: int = 3
    demos: int = 3
    attempts: int = 2
    rewrite_max_tokens: int = 640

    def __post_init__(self) -> None:
        if not self.raw_ids:
            raise ValueError("raw_ids must name at least one raw sample dialogue")
        if self.language not in LANGUAGES:
            raise ValueError(f"language must be 'en' or 'zh', got {self.language!r}")
        if self.max_utterances < 2:
            raise ValueError(f"max_utterances must be >= 2, got {self.max_utterances}")
        for name in ("classify_turns", "synthesize", "dev_dialogues", "test_dialogues", "positions",
                     "train_positions", "demos", "attempts", "rewrite_max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def to_json(self) -> dict[str, Any]:
        """Plain data for the manifest and the report."""
        data = asdict(self)
        data["raw_ids"] = list(self.raw_ids)
        return data


def truncate(dialogue: Dialogue, supporter_turns: int) -> Dialogue:
    """A copy of ``dialogue`` ending with its ``supporter_turns``-th supporter turn (the whole one if shorter).

    Example:
        ```python
        truncate(load_sample("annotated_en")[0], 2).supporter_indices()   # [0, 2]
        ```
    """
    indices = dialogue.supporter_indices()
    if len(indices) <= supporter_turns:
        return dialogue
    end = indices[supporter_turns - 1] + 1
    metadata = {**dialogue.metadata, "truncated_after_supporter_turns": supporter_turns}
    return dialogue.model_copy(update={"turns": list(dialogue.turns[:end]), "metadata": metadata})


def held_out_splits(plan: DemoPlan, dialogues: list[Dialogue]) -> dict[str, list[Dialogue]]:
    """The annotated samples split by id hash: all of ``train``, the first dev and test dialogues of the plan.

    Raises:
        ValueError: a split has fewer dialogues than the plan asks for.
    """
    parts = split_dialogues(dialogues, SPLITS, salt=SPLIT_SALT)
    for name, wanted in (("dev", plan.dev_dialogues), ("test", plan.test_dialogues)):
        if len(parts[name]) < wanted:
            raise ValueError(f"the {name} split of the annotated {plan.language} samples has "
                             f"{len(parts[name])} dialogue(s); the plan asks for {wanted}")
    return {"train": parts["train"], "dev": parts["dev"][: plan.dev_dialogues],
            "test": parts["test"][: plan.test_dialogues]}


def demo_config(config: Config, out_dir: Path, *, fresh: bool = False) -> tuple[Config, list[str]]:
    """The configuration the demo runs with, and one note per change made to ``config``.

    * The response cache lives in ``out_dir/cache`` unless the configuration sets ``[cache] dir`` (file or
      ``CSCPROG_CACHE_DIR``); ``fresh`` switches the cache to ``refresh`` mode (every call made again).
    * On the embedded model with no model size or file configured, the demo uses the 0.5B model, and its
      weights are taken from (or assembled once into) the models directory (``[lm] models_dir``), not ``out_dir``;
      with no ``local_threads`` configured and a busy machine (:func:`busy_machine`), it runs on one thread.
      Completion limits are the configuration's: with no ``max_tokens`` configured, each role has the embedded
      model's limit for it (:data:`cscprog.config.LOCAL_MAX_TOKENS`, sized so that what the role writes fits),
      and the rewrite call its own (:attr:`DemoPlan.rewrite_max_tokens`); a note states them.

    Raises:
        ConfigError: the embedded model's weights are missing or damaged.

    Example:
        ```python
        config, notes = demo_config(load_config("cscprog.toml"), Path("demo-out"), fresh=True)
        ```
    """
    notes: list[str] = []
    cache = config.cache
    updates: dict[str, Any] = {}
    if "dir" not in cache.model_fields_set:
        updates["dir"] = str(out_dir / "cache")
        notes.append(f"response cache in {out_dir / 'cache'} (set [cache] dir to share one)")
    if fresh:
        updates["mode"] = "refresh"
        notes.append("--fresh: every LM call is made again and its cached response replaced")
    lm = config.lm
    if lm.model == LOCAL_MODEL and lm.local_model_path is None:
        size = lm.local_model_size
        if "local_model_size" not in lm.model_fields_set:
            size = DEMO_LOCAL_SIZE
            notes.append(f"embedded {DEMO_LOCAL_SIZE} model (set [lm] local_model_size = \"1.5b\" for the larger one)")
        path, _ = resolve_model_file(None, size, lm.models_path)
        lm_updates: dict[str, Any] = {"local_model_size": size, "local_model_path": str(path)}
        if lm.local_threads is None and busy_machine():
            lm_updates["local_threads"] = 1
            notes.append(f"the machine is busy (load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores): the "
                         "embedded model uses 1 thread (set [lm] local_threads to choose)")
        lm = lm.model_copy(update=lm_updates)
    config = config.model_copy(update={"cache": cache.model_copy(update=updates) if updates else cache, "lm": lm})
    if lm.model == LOCAL_MODEL:
        limits = ", ".join(f"{role} {config.lm_for(role).max_tokens or DEFAULT_MAX_TOKENS}" for role in DEMO_ROLES)
        notes.append(f"embedded model completion limits in tokens: {limits} (set [lm] or [roles.NAME] max_tokens "
                     "to choose)")
    return config, notes


def busy_machine() -> bool:
    """True when other work keeps at least half the cores busy (1-minute load average); False when unknown.

    llama.cpp's worker threads spin while they wait for each other, so on a busy machine one thread runs the
    embedded model several times faster than one per core (measured on two shared cores: a 650-token prompt
    took under a minute with one thread and over ten with two, at a load average of about 9).

    Example:
        ```python
        threads = 1 if busy_machine() else None   # None: one per core
        ```
    """
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        return False
    return load >= max(1.0, (os.cpu_count() or 1) / 2)


def provider_snippet(model: str = "openai/gpt-4o-mini", api_key_env: str = "OPENAI_API_KEY") -> str:
    """A ``cscprog.toml`` that runs the same pipeline on a hosted provider.

    Example:
        ```python
        Path("cscprog.toml").write_text(provider_snippet())
        ```
    """
    return (f'[lm]\nmodel = "{model}"\napi_key_env = "{api_key_env}"   # the NAME of the variable holding the key\n'
            "temperature = 0.0\n\n[run]\nconcurrency = 8\n")
