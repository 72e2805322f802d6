"""Checks that a rewritten line stays close to the line of the real call it was written from.

The turn-anchored rewrite (:mod:`cscprog.csconv.anchored`) asks a model to restate each supporter line of a call.
A small model drifts: it invents an amount, answers a question nobody asked, echoes the customer, or repeats an
earlier turn. :func:`check_rewritten_line` names the first such fault (the reason a retry is asked for), or
returns None for a usable line:

* ``empty``: no words;
* ``too long``: over three times the original plus 200 characters;
* ``drops a number`` / ``adds a number``: every number of the original must be in the rewrite (commas and
  currency signs ignored), and every number of the rewrite must come from the original or the customer's line
  just before;
* ``adds a name``: a capitalised word inside a sentence that neither the original nor the customer's line has;
* ``turns a question into a statement``: the original asks (ends with a question mark) and the rewrite does not;
* ``echoes the customer``: the rewrite contains the customer's previous line (12+ normalised characters) and
  the original does not;
* ``speaks as the customer``: the rewrite asks for something in the customer's voice (:data:`CUSTOMER_VOICE`)
  and the original does not;
* ``repeats turn k``: the rewrite says word for word what an earlier turn said;
* ``loses the content``: under a third of the original's content words (three or more letters, not in a
  short list of function words, common endings removed; each ideograph for Chinese) are in the rewrite (only
  when ``keep_content``).

:func:`is_unchanged` tells a rewrite that only restates the original word for word (case, spaces and
punctuation ignored): such a line is usable but is recorded as unchanged, never as rewritten.

Example:
    ```python
    from cscprog.csconv.faithful import check_rewritten_line

    check_rewritten_line("You have $3,814.44 in checking.", "Your checking balance is $3,814.44.")   # None
    check_rewritten_line("To whom?", "Your balance is $100.")   # 'adds a number (100) ...'
    ```
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cscprog.csconv.degenerate import normalize, tokens

__all__ = ["CUSTOMER_VOICE", "check_rewritten_line", "content_words", "is_unchanged", "new_names", "numbers"]

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
CUSTOMER_VOICE = ("i would like", "i'd like", "i want", "i wish to", "i need to", "could you help me",
                  "can you help me", "i am paying", "我想", "我要", "帮我")
"""Phrases of a customer asking for something; an agent line's rewrite using one (its original does not) has
taken the customer's voice."""
_FUNCTION_WORDS = frozenset(
    "the and for you your yours are was were would could should will can may might shall this that these those "
    "with from into what which who whom how when where why have has had does did not but all any some our out "
    "please thank thanks okay yes sure just also".split()
)


def numbers(text: str) -> set[str]:
    """The numbers in ``text``, commas and trailing zeros of decimals kept as written but separators removed.

    Example:
        ```python
        numbers("Send $1,210.00 to [Name] in 3 days")   # {'1210.00', '3'}
        ```
    """
    return {match.group(0).replace(",", "") for match in _NUMBER.finditer(text)}


def content_words(text: str) -> set[str]:
    """The words that carry content: three or more letters and not a function word; each Chinese ideograph.

    Example:
        ```python
        content_words("Which account, checking or savings?")   # {'account', 'check', 'saving'}
        ```
    """
    return {_stem(w) for w in tokens(text)
            if ("\u3400" <= w[0] <= "\u9fff") or (len(w) >= 3 and w not in _FUNCTION_WORDS and not w.isdigit())}


def _stem(word: str) -> str:
    """``word`` without a common English ending (paying, paid -> pay is not attempted; transfers -> transfer)."""
    for ending in ("ing", "ed", "es", "s"):
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)]
    return word


def new_names(text: str, source: str) -> list[str]:
    """Capitalised words of ``text`` (not opening a sentence, not in a placeholder, not "I") absent from ``source``
    (case ignored): names a rewrite brought in from elsewhere.

    Example:
        ```python
        new_names("Send it to Mia, then tell Diego.", "send to diego")   # ['Mia']
        ```
    """
    known = {word.casefold() for word in re.findall(r"[^\W\d_]+", source)}
    outside = re.sub(r"\[[^\]]*\]", " ", text)
    found = []
    for match in re.finditer(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-z]+)\b", outside.strip()):
        word = match.group(1)
        if word != "I" and word.casefold() not in known and word not in found:
            found.append(word)
    return found


def is_unchanged(original: str, text: str) -> bool:
    """True when ``text`` says the original word for word (case, spaces and punctuation ignored).

    Example:
        ```python
        is_unchanged("Transfer successful.", "transfer successful")   # True
        ```
    """
    return normalize(original) == normalize(text)


def check_rewritten_line(
    original: str,
    text: str,
    *,
    before: str = "",
    earlier: Sequence[str] = (),
    keep_content: bool = True,
) -> str | None:
    """Why ``text`` is not a usable rewrite of ``original`` (None when it is); see the module docstring.

    Args:
        original: The line of the real call.
        text: The rewrite.
        before: The customer's line just before (numbers may come from it; the rewrite must not echo it).
        earlier: The texts of the rewritten dialogue's earlier turns.
        keep_content: Check that the original's content words survive (off for the opening and closing lines,
            whose task may replace a bare "Bye" with a full goodbye).

    Example:
        ```python
        check_rewritten_line("Amount?", "How much would you like to send?", before="To Diego.")   # None
        ```
    """
    key = normalize(text)
    if not key:
        return "empty: the rewrite has no words"
    if len(text) > 3 * len(original) + 200:
        return f"too long: {len(text)} characters for an original of {len(original)}"
    source_numbers, written = numbers(original), numbers(text)
    missing = sorted(source_numbers - written)
    if missing and "[" not in text:
        return f"drops a number ({', '.join(missing)}) of the original"
    added = sorted(written - source_numbers - numbers(before))
    if added:
        return f"adds a number ({', '.join(added)}) that the call does not have"
    if original.rstrip().endswith(("?", "？")) and not any(mark in text for mark in "?？"):
        return "turns the original's question into a statement"
    echoed = normalize(before)
    if len(echoed) >= 12 and echoed in key and echoed not in normalize(original):
        return "echoes the customer's line instead of replying to it"
    names = new_names(text, f"{original} {before}")
    if names:
        return f"adds a name ({', '.join(names)}) that the line does not have"
    lowered, source = text.casefold(), original.casefold()
    voice = next((phrase for phrase in CUSTOMER_VOICE if phrase in lowered and phrase not in source), None)
    if voice is not None:
        return f"speaks as the customer ({voice!r})"
    for index, earlier_text in enumerate(earlier):
        if normalize(earlier_text) == key:
            return f"repeats turn {index} word for word"
    if keep_content:
        wanted = content_words(original)
        kept = wanted & content_words(text)
        if wanted and len(kept) * 3 < len(wanted):
            return f"loses the content: keeps {len(kept)} of the original's {len(wanted)} content words"
    return None
