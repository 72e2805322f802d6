"""Rule checks for degenerate generated text: what no LLM judge may wave through.

Small models fail in recognisable ways: a turn that repeats an earlier one, a turn that copies the scenario or
the profile it was given, text that loops on the same few words, an empty or runaway turn, a customer who
starts talking like the agent. :func:`check_degenerate` finds these in a generated dialogue (a rewrite or a
role-play) and names the first rule that fails; a dialogue failing one is never kept, whatever a judge says.

The rules, in the order they run (:data:`DEGENERATE_RULES`):

* ``empty_turn``: a turn with no letters, digits or ideographs.
* ``long_turn``: a turn over ``max_turn_chars`` characters.
* ``speaker_label``: a turn that opens with a speaker's name and a colon ("Supporter: ...", "客服：..."): the
  model wrote a script instead of a line.
* ``label_as_text``: a turn whose whole text is its own strategy label ("Greeting").
* ``refusal``: a turn that is an assistant model's refusal ("I'm sorry, but I can't assist with that request"),
  which no support agent or caller says.
* ``repeated_turn``: a turn whose normalised text (case, spaces and punctuation ignored) of at least
  ``min_repeat_chars`` characters equals the turn just before it, the same speaker's previous turn, or two
  earlier turns: an echo or a loop. A real call may say one long sentence twice, far apart (two transfers
  each confirmed the same way), so a single distant repeat passes. A shorter supporter turn ("To Diego.") said
  ``max_short_repeats`` times is a loop too (customers of real calls do say "Yes, that's correct." three times).
  A turn that holds the whole of one of the same speaker's earlier turns of at least ``min_contained_chars``
  characters, and adds to it, is a repeat as well (a supporter re-sending its whole greeting with a question
  tacked on).
* ``copied_context``: a turn sharing a run of at least ``min_copy_tokens`` consecutive tokens (case and
  punctuation ignored) with the context it was written from (scenario, goal, profile).
* ``ngram_repetition``: a turn whose token n-grams (words, or single ideographs for Chinese) repeat
  within it: the share of repeated ``ngram``-grams over ``max_repeated_share``, for turns of at least
  ``min_ngram_tokens`` tokens; or a dialogue whose ``ngram``-grams are more than ``max_dialogue_repeated_share``
  repeats of earlier ones.
* ``echoed_turn``: a turn of at least ``min_echo_tokens`` tokens of which ``max_echo_share`` or more of the
  ``ngram``-grams come from the turn just before it: the other speaker's words handed back (a real agent's
  confirmation restates a detail, not the whole line).
* ``role_swap``: a customer turn using the supporter's stock phrases (offering help, thanking for the call,
  introducing the company), in English or Chinese.

Example:
    ```python
    from cscprog.csconv.degenerate import check_degenerate

    decision = check_degenerate(dialogue, context=[scenario.text, profile.as_prompt()])
    decision.kept, decision.rule, decision.reason   # (False, 'copied_context', 'turn 3 copies ...')
    ```
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cscprog.csconv.prefilter import FilterDecision
from cscprog.data import CUSTOMER, Dialogue

__all__ = [
    "DEGENERATE_RULES",
    "REFUSAL_PHRASES",
    "ROLE_SWAP_PHRASES",
    "DegenerateRules",
    "check_degenerate",
    "normalize",
    "repeated_share",
    "tokens",
]

DEGENERATE_RULES = (
    "empty_turn", "long_turn", "speaker_label", "label_as_text", "refusal", "repeated_turn", "copied_context",
    "ngram_repetition", "echoed_turn", "role_swap",
)
"""The names a degenerate-text decision can report, in the order they run."""

ROLE_SWAP_PHRASES = (
    "how can i help you", "how may i help you", "how can i assist you", "how may i assist you",
    "is there anything else i can help", "thank you for calling", "thanks for calling", "thank you for contacting",
    "welcome to [company name]", "this is [company name]", "please hold while i", "i have verified your",
    "有什么可以帮您", "有什么能帮您", "请问有什么可以", "很高兴为您服务", "感谢您的来电", "感谢您致电", "欢迎致电",
    "这里是[公司名称]", "我已为您", "请您稍等，我",
)
"""Phrases (lowercased) that only the supporter says; a customer turn using one is a role swap."""

REFUSAL_PHRASES = (
    "i can't assist with that", "i cannot assist with that", "i can't help with that request",
    "i cannot help with that request", "i'm unable to assist with that", "i am unable to assist with that",
    "i can't fulfill that request", "i cannot fulfill that request", "i can't comply with", "as an ai language model",
    "as an ai assistant", "我无法协助", "我不能协助", "我无法满足您的这个请求", "作为一个人工智能", "作为一个ai",
)
"""Phrases (lowercased, straight apostrophes) of an assistant model refusing a request: never a support line."""

_SPEAKER_LABEL = re.compile(
    r"^\s*[\[(*]*\s*(supporter|support agent|agent|customer|caller|user|assistant|客服|客户|用户|顾客)"
    r"\s*[\])*]*\s*[:：]",
    re.IGNORECASE,
)

_WORD = re.compile(r"[\u3400-\u9fff]|[^\W_]+")
_ALNUM = re.compile(r"[^\W_]+")  # what str.isalnum() accepts: \w without the underscore


@dataclass(frozen=True)
class DegenerateRules:
    """Thresholds of the degenerate-text checks.

    Attributes:
        max_turn_chars: A longer turn is a runaway (the pre-filter's utterance limit by default).
        min_repeat_chars: Shorter repeated turns ("Yes, that's correct.", "好的，谢谢") are never a loop.
        min_copy_tokens: Fewest consecutive tokens (words; ideographs in Chinese) copied from the context that
            count as a copy.
        ngram: Token n-gram size of the repetition checks.
        min_ngram_tokens: Turns with fewer tokens are not checked for inner repetition.
        max_repeated_share: Most share of a turn's n-grams that may repeat within it.
        max_dialogue_repeated_share: Most share of the dialogue's n-grams that may repeat earlier ones.
        max_short_repeats: A supporter turn shorter than ``min_repeat_chars`` said this many times is a loop.
        min_contained_chars: Shortest earlier turn (normalised characters) whose whole text found again inside a
            later turn of the same speaker counts as a repeat.
        min_echo_tokens: Shorter turns are never an echo of the turn before them.
        max_echo_share: A turn with this share of its n-grams taken from the turn before it is an echo.

    Example:
        ```python
        strict = DegenerateRules(max_repeated_share=0.3)
        ```
    """

    max_turn_chars: int = 500
    min_repeat_chars: int = 20
    min_copy_tokens: int = 15
    ngram: int = 3
    min_ngram_tokens: int = 12
    max_repeated_share: float = 0.4
    max_dialogue_repeated_share: float = 0.6
    max_short_repeats: int = 3
    min_contained_chars: int = 40
    min_echo_tokens: int = 10
    max_echo_share: float = 0.75

    def __post_init__(self) -> None:
        if self.ngram < 1 or self.max_turn_chars < 1 or self.min_copy_tokens < 1:
            raise ValueError("ngram, max_turn_chars and min_copy_tokens must be >= 1")
        for name in ("max_repeated_share", "max_dialogue_repeated_share", "max_echo_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


@functools.lru_cache(maxsize=4096)  # a role-play checks each new turn against every earlier one, again and again
def normalize(text: str) -> str:
    """Lowercase, width-folded text without spaces or punctuation: what "the same words" compares.

    Example:
        ```python
        normalize("Hello,  World!"), normalize("你好，世界。")   # ('helloworld', '你好世界')
        ```
    """
    return "".join(_ALNUM.findall(unicodedata.normalize("NFKC", text).casefold()))


def tokens(text: str) -> list[str]:
    """Words of ``text``, each Chinese ideograph a token of its own.

    Example:
        ```python
        tokens("Your card 1234 好的")   # ['your', 'card', '1234', '好', '的']
        ```
    """
    return [match.group(0) for match in _WORD.finditer(unicodedata.normalize("NFKC", text).casefold())]


def repeated_share(items: Sequence[str], n: int) -> float:
    """Share of the ``n``-grams of ``items`` that repeat an earlier n-gram (0.0 when there are none).

    Example:
        ```python
        repeated_share("a b a b a b".split(), 2)   # 0.6: 3 of 5 bigrams were seen before
        ```
    """
    grams = [tuple(items[i : i + n]) for i in range(len(items) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def _windows(words: list[str], size: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}


def _malformed_turn(index: int, text: str, strategy: str | None) -> FilterDecision | None:
    """``speaker_label``, ``label_as_text`` or ``refusal`` for one turn, or None."""
    label = _SPEAKER_LABEL.match(text)
    if label is not None:
        return FilterDecision.drop(
            "speaker_label", f"turn {index} opens with a speaker label ({label.group(0).strip()!r})", turn=index
        )
    if strategy and normalize(text) == normalize(strategy):
        return FilterDecision.drop(
            "label_as_text", f"turn {index} says only its strategy label ({text.strip()!r})", turn=index
        )
    lowered = unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'")
    phrase = next((p for p in REFUSAL_PHRASES if p in lowered), None)
    if phrase is not None:
        return FilterDecision.drop("refusal", f"turn {index} is a model's refusal ({phrase!r})", turn=index)
    return None


def check_degenerate(
    dialogue: Dialogue, *, context: Iterable[str] = (), rules: DegenerateRules | None = None, turn: int | None = None
) -> FilterDecision:
    """Check a generated dialogue for degenerate text; the first failing rule drops it.

    Args:
        dialogue: The generated dialogue (rewrite or role-play).
        context: Texts the turns were written from and must not copy (scenario, goal, profile description).
        rules: Thresholds (defaults when None).
        turn: Check only this turn (against the turns before it and the context), as a role-play does before a
            new turn joins; the dialogue-wide repetition share is then left to the whole-dialogue check. An
            earlier turn's fault never hides this one's.

    Returns:
        A :class:`FilterDecision` whose ``rule`` is one of :data:`DEGENERATE_RULES`; ``details`` name the
        ``turn`` and the figures.

    Example:
        ```python
        check_degenerate(dialogue, context=[dialogue.scenario.text]).kept
        ```
    """
    rules = rules or DegenerateRules()
    turns = dialogue.turns
    if turn is not None and not 0 <= turn < len(turns):
        raise ValueError(f"turn {turn} is not in a dialogue of {len(turns)} turns")
    checked = range(len(turns)) if turn is None else range(turn, turn + 1)
    for index in checked:
        if not normalize(turns[index].text):
            return FilterDecision.drop("empty_turn", f"turn {index} has no words", turn=index)
        length = len(turns[index].text.strip())
        if length > rules.max_turn_chars:
            return FilterDecision.drop(
                "long_turn", f"turn {index} has {length} characters, more than {rules.max_turn_chars}",
                turn=index, chars=length,
            )
        malformed = _malformed_turn(index, turns[index].text, turns[index].strategy)
        if malformed is not None:
            return malformed
    keys = [normalize(each.text) for each in turns]
    for index in checked:
        key = keys[index]
        if len(key) < rules.min_repeat_chars:
            same = [i for i in range(index) if keys[i] == key and turns[i].speaker == turns[index].speaker]
            if turns[index].speaker != CUSTOMER and len(same) + 1 >= rules.max_short_repeats:
                return FilterDecision.drop(
                    "repeated_turn",
                    f"turn {index} says {turns[index].text.strip()!r} again: {len(same) + 1} times by the "
                    f"{turns[index].speaker}",
                    turn=index, earlier=same[-1],
                )
            continue
        earlier = [i for i in range(index) if keys[i] == key]
        if earlier and (earlier[-1] >= index - 2 or len(earlier) >= 2):
            return FilterDecision.drop(
                "repeated_turn",
                f"turn {index} repeats turn {earlier[-1]} word for word"
                + (f" ({len(earlier) + 1} times in all)" if len(earlier) >= 2 else ""),
                turn=index, earlier=earlier[-1],
            )
        contained = [
            i for i in range(index)
            if turns[i].speaker == turns[index].speaker and len(keys[i]) >= rules.min_contained_chars
            and keys[i] != key and keys[i] in key
        ]
        if contained:
            return FilterDecision.drop(
                "repeated_turn", f"turn {index} says all of turn {contained[-1]} again and adds to it",
                turn=index, earlier=contained[-1],
            )
    copied = set().union(*(_windows(tokens(text), rules.min_copy_tokens) for text in context if text))
    for index in checked:
        overlap = _windows(tokens(turns[index].text), rules.min_copy_tokens) & copied
        if overlap:
            words = next(iter(overlap))
            joiner = "" if all(len(w) == 1 for w in words) else " "
            return FilterDecision.drop(
                "copied_context",
                f"turn {index} copies {rules.min_copy_tokens}+ words of the scenario or profile verbatim "
                f"({joiner.join(words)!r})",
                turn=index,
            )
    for index in checked:
        words = tokens(turns[index].text)
        share = repeated_share(words, rules.ngram)
        if len(words) >= rules.min_ngram_tokens and share > rules.max_repeated_share:
            return FilterDecision.drop(
                "ngram_repetition",
                f"turn {index} repeats itself: {share:.0%} of its {rules.ngram}-grams occur twice or more",
                turn=index, repeated_share=round(share, 4),
            )
    overall = repeated_share([word for each in turns for word in tokens(each.text)], rules.ngram) if turn is None else 0
    if overall > rules.max_dialogue_repeated_share:
        return FilterDecision.drop(
            "ngram_repetition",
            f"the dialogue repeats itself: {overall:.0%} of its {rules.ngram}-grams occur earlier",
            repeated_share=round(overall, 4),
        )
    for index in checked:
        words = tokens(turns[index].text)
        if index == 0 or len(words) < rules.min_echo_tokens or turns[index].speaker == turns[index - 1].speaker:
            continue
        grams = [tuple(words[i : i + rules.ngram]) for i in range(len(words) - rules.ngram + 1)]
        before = _windows(tokens(turns[index - 1].text), rules.ngram)
        share = sum(gram in before for gram in grams) / len(grams)
        if share >= rules.max_echo_share:
            return FilterDecision.drop(
                "echoed_turn",
                f"turn {index} hands back turn {index - 1}: {share:.0%} of its {rules.ngram}-grams are that turn's",
                turn=index, earlier=index - 1, echo_share=round(share, 4),
            )
    for index in checked:
        if turns[index].speaker != CUSTOMER:
            continue
        lowered = unicodedata.normalize("NFKC", turns[index].text).casefold()
        phrase = next((p for p in ROLE_SWAP_PHRASES if p in lowered), None)
        if phrase is not None:
            return FilterDecision.drop(
                "role_swap", f"customer turn {index} speaks as the supporter ({phrase!r})", turn=index, phrase=phrase
            )
    if turn is not None:
        return FilterDecision.keep("no degenerate text in the turn")
    return FilterDecision.keep("no degenerate text", repeated_share=round(overall, 4))

