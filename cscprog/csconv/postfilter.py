"""The rule post-filters of the rewriting pipeline: clean and check a rewritten, strategy-labelled dialogue.

* :func:`strip_system_notes` removes system notes by two rules, each named where it acted:

  - ``last_parenthesis`` (the method's authors' rule): the dialogue's last utterance is dropped when it holds
    a parenthesised group (ASCII or full-width) that is not an emoticon, such as ``（客户挂了电话）`` or
    ``（客户已离线）``, which no word list foresees;
  - ``note_keyword``: a parenthesised group that ends any other utterance is stripped when it contains a
    note word (:data:`NOTE_WORDS_EN`, :data:`NOTE_WORDS_ZH`): system, call transferred, hangs up, on hold,
    系统, 提示, 通话, 挂断, 离线...; emoticons (``(^_^)``) and remarks (``（或护照）``,
    ``(Note: a 2% fee applies)``) stay. A turn that was nothing but a note is removed.
* :func:`check_single_label` drops a dialogue with a multi-label turn.
* :func:`check_required_strategies` requires the taxonomy's opening, verification and closing strategies
  (Greeting, Identity Verification, Appreciation and Closure for CSC) to be present; a rule the taxonomy does
  not have is not checked.
* :func:`check_alternation` requires strictly alternating speakers.

:func:`postfilter` runs them in this order. The LLM judge is the remaining post-filter; it lives in
:class:`cscprog.csconv.rewriter.Rewriter`.

Example:
    ```python
    from cscprog.framework import load_taxonomy
    from cscprog.csconv.postfilter import postfilter, split_trailing_notes

    split_trailing_notes("Goodbye! (system: call ended)")   # ('Goodbye!', ['system: call ended'])
    split_trailing_notes("See you (^_^)")                    # ('See you (^_^)', [])
    cleaned, decision = postfilter(rewritten, load_taxonomy("csc"))
    ```
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from cscprog.csconv.prefilter import FilterDecision
from cscprog.data import Dialogue, Turn
from cscprog.framework import Taxonomy

__all__ = [
    "NOTE_RULES",
    "NOTE_WORDS_EN",
    "NOTE_WORDS_ZH",
    "POSTFILTER_RULES",
    "check_alternation",
    "check_required_strategies",
    "check_single_label",
    "is_emoticon",
    "is_system_note",
    "last_parenthesis",
    "postfilter",
    "split_trailing_notes",
    "strip_system_notes",
]

NOTE_RULES = ("last_parenthesis", "note_keyword")
"""The two rules that strip system notes: the authors' rule on the last utterance, and the note-word rule."""

POSTFILTER_RULES = ("multi_label", "required_strategies", "alternation")
"""The rules a rule post-filter decision can name, in the order :func:`postfilter` runs them."""

NOTE_WORDS_EN = (
    "system", "system note", "call ended", "call ends", "call end", "end of call", "call transferred",
    "call disconnected", "call dropped", "transferred", "transferring", "disconnected", "hangs up", "hung up",
    "hanging up", "on hold", "hold music", "silence", "inaudible", "background", "noise",
    "laughs", "laughing", "sighs", "sighing", "recording", "beep", "ivr", "automated",
)
"""English words (whole words, case-insensitive) that make a trailing parenthesised group a system note. "note"
alone is not one: ``(Note: a 2% fee applies)`` is content."""

NOTE_WORDS_ZH = (
    "系统", "提示", "通话", "挂断", "挂机", "挂了电话", "挂电话", "离线", "掉线", "断线", "下线", "转接", "音乐",
    "静音", "沉默", "录音", "停顿", "笑", "叹气", "背景音", "杂音", "嘟", "无声", "语音播报",
)
"""Chinese words (substrings) that make a trailing parenthesised group a system note."""

_OPEN = "(（"
_CLOSE = ")）"
_AFTER_NOTE = " \t\r\n.。!！,，;；"
_WORDISH = re.compile(r"[\u3400-\u9fff]|[^\W_]{2}")
_GROUP = re.compile(r"[(（]([^()（）]*)[)）]")
_EN_NOTE = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in NOTE_WORDS_EN) + r")\b", re.IGNORECASE)


def is_system_note(
    content: str, *, words_en: Iterable[str] | None = None, words_zh: Iterable[str] | None = None
) -> bool:
    """True when the text inside a pair of parentheses is a system note rather than an emoticon or a remark.

    Args:
        content: The text between the parentheses.
        words_en: English note words to use instead of :data:`NOTE_WORDS_EN`.
        words_zh: Chinese note words to use instead of :data:`NOTE_WORDS_ZH`.

    Example:
        ```python
        is_system_note("system: call transferred"), is_system_note("^_^")   # (True, False)
        ```
    """
    text = content.strip()
    if not text:
        return False
    pattern = _EN_NOTE
    if words_en is not None:
        pattern = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words_en) + r")\b", re.IGNORECASE)
    if pattern.search(text):
        return True
    return any(word in text for word in (NOTE_WORDS_ZH if words_zh is None else words_zh))


def is_emoticon(content: str) -> bool:
    """True when the text inside a pair of parentheses is an emoticon (``^_^``, ``T_T``, ``*´▽`*``), not words:
    no CJK ideograph and no run of two letters or digits.

    Example:
        ```python
        is_emoticon("^_^"), is_emoticon("客户已离线"), is_emoticon("ok")   # (True, False, False)
        ```
    """
    text = content.strip()
    return bool(text) and _WORDISH.search(text) is None


def _trailing_group(text: str) -> tuple[int, str] | None:
    """Start index and content of the balanced parenthesised group that ends ``text``, if any."""
    end = len(text) - 1
    if end < 0 or text[end] not in _CLOSE:
        return None
    depth = 0
    for index in range(end, -1, -1):
        char = text[index]
        if char in _CLOSE:
            depth += 1
        elif char in _OPEN:
            depth -= 1
            if depth == 0:
                return index, text[index + 1 : end]
    return None


def split_trailing_notes(
    text: str, *, words_en: Iterable[str] | None = None, words_zh: Iterable[str] | None = None
) -> tuple[str, list[str]]:
    """Split the system notes off the end of an utterance.

    Notes are removed from the end, one after another, together with spaces and punctuation that follow them;
    the first trailing group that is not a note (an emoticon, a remark) stops the stripping. Text without a
    trailing note is returned unchanged.

    Returns:
        ``(text without its trailing notes, the notes' contents in reading order)``.

    Example:
        ```python
        split_trailing_notes("不客气，再见（系统提示：通话已结束）")   # ('不客气，再见', ['系统提示：通话已结束'])
        split_trailing_notes("Thanks :)")                              # ('Thanks :)', [])
        ```
    """
    notes: list[str] = []
    rest = text
    while True:
        candidate = rest.rstrip(_AFTER_NOTE)
        group = _trailing_group(candidate)
        if group is None or not is_system_note(group[1], words_en=words_en, words_zh=words_zh):
            break
        start, content = group
        notes.insert(0, content.strip())
        rest = candidate[:start].rstrip()
    return (rest if notes else text), notes


def last_parenthesis(dialogue: Dialogue) -> dict[str, object] | None:
    """The authors' note rule: the last utterance, when it holds a parenthesised group that is not an emoticon.

    Returns:
        ``{"turn": index, "text": the utterance, "group": the first such group}``, or None.

    Example:
        ```python
        last_parenthesis(dialogue)   # {'turn': 11, 'text': '好的（客户已离线）', 'group': '客户已离线'}
        ```
    """
    if not dialogue.turns:
        return None
    text = dialogue.turns[-1].text
    for match in _GROUP.finditer(text):
        if not is_emoticon(match.group(1)):
            return {"turn": len(dialogue.turns) - 1, "text": text, "group": match.group(1).strip()}
    return None


def strip_system_notes(dialogue: Dialogue) -> tuple[Dialogue, FilterDecision]:
    """Remove system notes by the two :data:`NOTE_RULES`; a turn left empty is removed.

    First the keyword rule strips trailing notes (:func:`split_trailing_notes`) from every turn; then the
    authors' rule (:func:`last_parenthesis`) drops the last remaining utterance when it still holds a
    non-emoticon parenthesis (a note no word list knows, or a remark the authors would also have dropped).

    Returns:
        The cleaned copy and a passing decision whose ``details`` list the ``notes`` (turn index by the original
        indices, the note, and the ``rule`` that removed it) and the ``removed_turns``.

    Example:
        ```python
        cleaned, decision = strip_system_notes(dialogue)
        decision.details["notes"]   # [{'turn': 11, 'note': '客户挂了电话', 'rule': 'note_keyword'}]
        ```
    """
    notes: list[dict[str, object]] = []
    removed: list[int] = []
    kept: list[tuple[int, Turn]] = []
    for index, turn in enumerate(dialogue.turns):
        text, found = split_trailing_notes(turn.text)
        notes.extend({"turn": index, "note": note, "rule": "note_keyword"} for note in found)
        if not found:
            kept.append((index, turn))
        elif text.strip():
            kept.append((index, turn.model_copy(update={"text": text})))
        else:
            removed.append(index)
    turns = [turn for _, turn in kept]
    last = last_parenthesis(dialogue.model_copy(update={"turns": turns}))
    if last is not None:
        index = kept[-1][0]
        notes.append({"turn": index, "note": last["group"], "rule": "last_parenthesis", "text": last["text"]})
        removed.append(index)
        turns.pop()
    cleaned = dialogue.model_copy(update={"turns": turns}) if notes else dialogue
    by_rule = {rule: sum(1 for note in notes if note["rule"] == rule) for rule in NOTE_RULES}
    reason = (
        "stripped " + ", ".join(f"{count} by {rule}" for rule, count in by_rule.items() if count)
        if notes else "no system notes"
    )
    if removed:
        reason += f"; removed {len(removed)} turn(s)"
    return cleaned, FilterDecision.keep(reason, notes=notes, removed_turns=sorted(removed), note_rules=by_rule)


def check_single_label(dialogue: Dialogue) -> FilterDecision:
    """Drop a dialogue in which any turn carries more than one strategy.

    Example:
        ```python
        check_single_label(dialogue).kept
        ```
    """
    multi = [index for index, turn in enumerate(dialogue.turns) if turn.is_multi_label]
    if multi:
        first = dialogue.turns[multi[0]]
        return FilterDecision.drop(
            "multi_label",
            f"{len(multi)} turn(s) carry several strategies, first turn {multi[0]}: {' + '.join(first.strategies)}",
            turns=multi,
        )
    return FilterDecision.keep("one strategy per labelled turn")


def check_required_strategies(dialogue: Dialogue, taxonomy: Taxonomy) -> FilterDecision:
    """Require the taxonomy's opening, verification and closing strategies among the supporter turns.

    A rule the taxonomy does not define (ESConv has none of the three) is not checked.

    Example:
        ```python
        check_required_strategies(dialogue, load_taxonomy("csc")).details["required"]
        # ['Greeting', 'Identity Verification', 'Appreciation and Closure']
        ```
    """
    flow = taxonomy.flow
    required = [name for name in (flow.opening, flow.verification, flow.closing) if name]
    if not required:
        return FilterDecision.keep(f"taxonomy {taxonomy.name!r} requires no strategy", required=[])
    present = {name for turn in dialogue.turns if turn.is_supporter for name in turn.strategies}
    missing = [name for name in required if name not in present]
    if missing:
        return FilterDecision.drop(
            "required_strategies",
            f"missing required strateg{'y' if len(missing) == 1 else 'ies'}: {', '.join(missing)}",
            required=required,
            missing=missing,
        )
    return FilterDecision.keep(f"has {', '.join(required)}", required=required)


def check_alternation(dialogue: Dialogue) -> FilterDecision:
    """Require strictly alternating speakers (and at least one turn of each).

    Example:
        ```python
        check_alternation(dialogue).reason
        ```
    """
    speakers = {turn.speaker for turn in dialogue.turns}
    if len(speakers) < 2:
        return FilterDecision.drop("alternation", f"only {len(speakers)} speaker(s) in {len(dialogue.turns)} turn(s)")
    for index in range(1, len(dialogue.turns)):
        if dialogue.turns[index].speaker == dialogue.turns[index - 1].speaker:
            return FilterDecision.drop(
                "alternation",
                f"turns {index - 1} and {index} are both by the {dialogue.turns[index].speaker}",
                turn=index,
            )
    return FilterDecision.keep("speakers alternate")


def postfilter(dialogue: Dialogue, taxonomy: Taxonomy) -> tuple[Dialogue, FilterDecision]:
    """Strip system notes, then check single labels, required strategies and alternation (in that order).

    Returns:
        The cleaned dialogue and the first failing decision, or a passing one; ``details`` hold the stripped
        ``notes`` and ``removed_turns``.

    Example:
        ```python
        cleaned, decision = postfilter(rewritten, load_taxonomy("csc"))
        if not decision.kept:
            print(decision.rule, decision.reason)
        ```
    """
    cleaned, stripped = strip_system_notes(dialogue)
    details = dict(stripped.details)
    for check in (check_single_label, lambda d: check_required_strategies(d, taxonomy), check_alternation):
        outcome = check(cleaned)
        if not outcome.kept:
            return cleaned, FilterDecision(False, outcome.rule, outcome.reason, {**details, **outcome.details})
    return cleaned, FilterDecision(True, None, f"passed the rule post-filters ({stripped.reason})", details)
