"""The supervised target of a supporter turn: the strategy, then the reply, as two parseable lines.

Fine-tuning data (:mod:`cscprog.finetune.export`) writes every supporter turn as ``Strategy: <name>`` then
``Reply: <text>`` under :func:`default_system_prompt`; :func:`parse_completion` reads a model's completion of
that form back (tolerantly), so the evaluation can score any model trained on it.

Example:
    ```python
    from cscprog.data.completion import format_target, parse_completion

    text = format_target("Greeting", "Hello, how can I help?")
    parse_completion(text)   # ('Greeting', 'Hello, how can I help?', None)
    ```
"""

from __future__ import annotations

import re

from cscprog.errors import TaxonomyError
from cscprog.framework import Taxonomy, load_taxonomy

__all__ = ["default_system_prompt", "format_target", "parse_completion"]

_KEY = r"[*_#\s]*(?:{words})[*_\s]*[:：][*_]*"
_STRATEGY_KEY = re.compile(r"(?im)^" + _KEY.format(words="strategy|策略"))
_REPLY_KEY_LINE = re.compile(r"(?im)^" + _KEY.format(words="reply|response|回复|回答"))
_REPLY_KEY_INLINE = re.compile(r"(?i)(?:^|(?<=\s))" + _KEY.format(words="reply|response|回复|回答"))


def default_system_prompt(taxonomy: Taxonomy | None = None) -> str:
    """cscprog's default system prompt: the task, the strategy names of ``taxonomy`` and the output layout.

    Example:
        ```python
        print(default_system_prompt(load_taxonomy("esconv")))
        ```
    """
    taxonomy = taxonomy or load_taxonomy("csc")
    return (
        "You act as a customer-support agent (the supporter) talking with a customer. You are given the "
        "conversation so far; the supporter's earlier turns are tagged with the support strategy they used. "
        "Decide which single support strategy your next turn should use, then write that turn in the "
        "conversation's language: one to three sentences, spoken directly to the customer, consistent with "
        "what has been said, without inventing account data.\n"
        f"Strategies: {', '.join(taxonomy.names)}.\n"
        "Answer with exactly two lines:\n"
        "Strategy: <one strategy name from the list, in English>\n"
        "Reply: <your next utterance>"
    )


def format_target(strategy: str, reply: str) -> str:
    """The assistant text of one example: ``Strategy: <name>\\nReply: <text>``.

    Example:
        ```python
        format_target("Greeting", "Hello, how can I help?")   # 'Strategy: Greeting\\nReply: Hello, how can I help?'
        ```
    """
    return f"Strategy: {strategy}\nReply: {reply}"


def parse_completion(text: str | None, taxonomy: Taxonomy | None = None) -> tuple[str | None, str | None, str | None]:
    """Read a model's ``Strategy: ...`` / ``Reply: ...`` output back: ``(strategy, reply, problem)``.

    Tolerated: surrounding whitespace and blank lines, any letter case, full-width colons, Markdown emphasis
    around the keys, the Chinese keys ``策略`` / ``回复``, ``Response`` for ``Reply``, both parts on one line, any
    label form :meth:`Taxonomy.parse` accepts (``GT``, ``2``, ``策略1 礼貌问候``...), and a reply without its
    ``Reply:`` key on the lines after the strategy line. A missing or unknown strategy, or a missing or empty
    reply, is reported in ``problem`` (the other part is still returned); a text with neither key gives
    ``(None, None, problem)``. Nothing raises on model output.

    Returns:
        The canonical strategy name or None, the reply text or None, and None or what is wrong.

    Example:
        ```python
        parse_completion("strategy： IV\\nreply: May I have your card number?", load_taxonomy("csc"))
        # ('Identity Verification', 'May I have your card number?', None)
        parse_completion("Sure, happy to help!", load_taxonomy("csc"))
        # (None, None, "no 'Strategy:' or 'Reply:' key in the completion")
        ```
    """
    taxonomy = taxonomy or load_taxonomy("csc")
    if not isinstance(text, str) or not text.strip():
        return None, None, "empty completion"
    strategy_key = _STRATEGY_KEY.search(text)
    label: str | None = None
    reply: str | None = None
    if strategy_key is None:
        reply_key = _REPLY_KEY_LINE.search(text)
        if reply_key is None:
            return None, None, "no 'Strategy:' or 'Reply:' key in the completion"
        reply = text[reply_key.end():]
    else:
        line_end = text.find("\n", strategy_key.end())
        line_end = len(text) if line_end < 0 else line_end
        label_line = text[strategy_key.end():line_end]
        inline = _REPLY_KEY_INLINE.search(label_line)
        if inline is not None:
            label, reply = label_line[:inline.start()], text[strategy_key.end() + inline.end():]
        else:
            label = label_line
            rest = text[line_end:]
            reply_key = _REPLY_KEY_LINE.search(rest)
            reply = rest[reply_key.end():] if reply_key is not None else rest
    reply = reply.strip() if reply is not None else None
    reply = reply or None
    strategy: str | None = None
    problems = []
    if label is None:
        problems.append("no 'Strategy:' line")
    elif not label.strip(" *_\t"):
        problems.append("the 'Strategy:' line names no strategy")
    else:
        try:
            strategy = taxonomy.parse(label.strip(" *_\t")).name
        except TaxonomyError as error:
            problems.append(str(error))
    if reply is None:
        problems.append("no reply")
    return strategy, reply, "; ".join(problems) or None
