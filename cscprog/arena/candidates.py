"""Candidates of the arena: the support agents that talk to the simulated customers.

A candidate answers one question: given the conversation so far, what does the agent say next (and, when it
knows of strategies, which strategy is it following)? Three kinds:

* :class:`ModuleCandidate` over a DSPy module called like the response generator (``history``, ``language``,
  ``domain`` -> ``reply`` and optionally ``strategy``): cscprog's
  :class:`~cscprog.agents.responder.ResponseGenerator`, base, compiled or fine-tuned, or any module a user names
  by import path (:func:`import_module_attr`). It sees its own earlier strategies in the history, as in the
  paper's generated-context setting.
* :class:`ChatCandidate`: a plain chat model behind an OpenAI-compatible endpoint, given a system prompt and the
  conversation as chat messages (agent turns as ``assistant``, customer turns as ``user``). It knows nothing of
  strategies; the arena labels its turns with the strategy classifier.

Every call goes through :func:`cscprog.lm.invoke.invoke` with a role, so it is cached, retried, limited and
counted like any other call. A chat candidate's endpoint is the role ``arena_agent`` (``[roles.arena_agent]`` in
the configuration) unless another role is named.

Example:
    ```python
    from cscprog.agents.responder import ResponseGenerator
    from cscprog.arena.candidates import ChatCandidate, ModuleCandidate

    base = ModuleCandidate("base", ResponseGenerator())
    plain = ChatCandidate("plain", "You are a helpful bank support agent. Answer briefly.")
    turn = base.respond(turns=[], language="en", domain="complaints")
    turn.text, turn.strategy
    ```
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from typing import Any, Protocol

import dspy

from cscprog.data import SUPPORTER, Turn, render_transcript
from cscprog.errors import ConfigError, TaxonomyError
from cscprog.framework import Taxonomy, load_taxonomy
from cscprog.lm.invoke import invoke
from cscprog.roles import Role

__all__ = [
    "AgentTurn",
    "Candidate",
    "ChatAgent",
    "ChatCandidate",
    "ModuleCandidate",
    "OPENING_CUE",
    "chat_messages",
    "import_module_attr",
]

CHAT_ROLE = Role.ARENA_AGENT
"""The default role of a chat candidate's calls."""

MODULE_ROLE = Role.RESPONDER
"""The default role of a module candidate's calls."""

OPENING_CUE = {
    "en": "(A customer has just been connected to you.)",
    "zh": "（一位客户刚刚接入了电话。）",
}
"""The user message a chat candidate sees before its first turn (chat APIs expect a user message first)."""


@dataclass(frozen=True)
class AgentTurn:
    """What a candidate said at one turn.

    Attributes:
        text: The agent's utterance.
        strategy: The strategy it says it followed (canonical name), or None when it names none.
    """

    text: str
    strategy: str | None = None


class Candidate(Protocol):
    """The interface the arena talks to (see the module docstring).

    Attributes:
        name: A short unique label (``base``, ``compiled``, ``plain``), used in ids, tables and plots.
    """

    name: str

    def respond(self, turns: list[Turn], *, language: str, domain: str) -> AgentTurn:
        """The agent's next turn after ``turns``."""
        ...

    def describe(self) -> dict[str, Any]:
        """What the candidate is, as plain data for the manifest and the result."""
        ...


def _check_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or any(char in cleaned for char in "/~ \t\n"):
        raise ConfigError(f"candidate name {name!r} must be non-empty, without spaces, '/' or '~'")
    return cleaned


def _has_reply(prediction: dspy.Prediction) -> str | None:
    reply = getattr(prediction, "reply", None)
    if not isinstance(reply, str) or not reply.strip():
        return "the module gave no reply (a non-empty `reply` output is required)"
    return None


class ModuleCandidate:
    """A DSPy module that writes the agent's next turn from a transcript.

    The module is called as ``module(history=..., language=..., domain=...)`` and must return a prediction with
    a non-empty ``reply``; a ``strategy`` output, when present, is read as a strategy of the taxonomy (a label
    outside it is recorded as None, with the raw label kept by the arena's scores as unknown).

    Args:
        name: The candidate's label.
        module: The DSPy module.
        taxonomy: The strategy taxonomy (default CSC).
        role: The role its calls run under (default ``responder``); cscprog's response generator always uses
            ``responder`` for its own calls.
        source: Where the module came from (a file, an import path), for the record.
        attempts: Attempts at a usable reply.

    Example:
        ```python
        candidate = ModuleCandidate("compiled", load_compiled(Path("compiled.json"), ResponseGenerator))
        ```
    """

    def __init__(
        self,
        name: str,
        module: Any,
        taxonomy: Taxonomy | None = None,
        *,
        role: str = MODULE_ROLE,
        source: str | None = None,
        attempts: int = 3,
    ) -> None:
        if not callable(module):
            raise ConfigError(f"candidate {name!r}: {type(module).__name__} is not callable")
        self.name = _check_name(name)
        self.module = module
        self.taxonomy = taxonomy if taxonomy is not None else load_taxonomy("csc")
        self.role = role
        self.source = source
        self.attempts = attempts

    def respond(self, turns: list[Turn], *, language: str, domain: str) -> AgentTurn:
        """The module's next turn after ``turns`` (its own earlier strategies shown in the history).

        Raises:
            GenerationFailure: no usable reply after the retries.
        """
        history = render_transcript(turns, strategies=True, language=language)
        prediction = invoke(self.module, role=self.role, attempts=self.attempts, validate=_has_reply,
                            history=history, language=language, domain=domain)
        label = getattr(prediction, "strategy", None)
        strategy = None
        if isinstance(label, str) and label.strip():
            try:
                strategy = self.taxonomy.parse(label).name
            except TaxonomyError:
                strategy = None
        return AgentTurn(text=str(prediction.reply).strip(), strategy=strategy)

    def describe(self) -> dict[str, Any]:
        """Kind, class, source and role."""
        return {"name": self.name, "kind": "module", "class": type(self.module).__qualname__,
                "source": self.source, "role": self.role}


class ChatAgent(dspy.Module):
    """A plain chat model as a DSPy module: system prompt plus chat messages in, the reply text out.

    The call goes to the LM of the active DSPy context (inside :func:`invoke`, the role's LM), through the same
    cache as every other call.

    Example:
        ```python
        agent = ChatAgent("You are a bank support agent.")
        agent(messages=[{"role": "user", "content": "Hello?"}]).reply
        ```
    """

    def __init__(self, system_prompt: str) -> None:
        super().__init__()
        self.system_prompt = system_prompt

    def forward(self, messages: list[dict[str, str]]) -> dspy.Prediction:
        """Send the conversation; ``Prediction(reply=<text>)``."""
        lm = dspy.settings.lm
        if lm is None:
            raise ConfigError("no language model is configured for the chat candidate")
        with warnings.catch_warnings():
            # DSPy 3.4 deprecates messages= for 3.5 (the project pins <3.5); its explicit lm15 Request path
            # would bypass the LM's own settings (temperature, max_tokens) and the rollout ids of retries.
            warnings.filterwarnings("ignore", message="Passing OpenAI-style message", category=DeprecationWarning)
            outputs = lm(messages=[{"role": "system", "content": self.system_prompt}, *messages])
        first = outputs[0] if outputs else ""
        text = first.get("text", "") if isinstance(first, dict) else str(first)
        return dspy.Prediction(reply=(text or "").strip())


def chat_messages(turns: list[Turn], language: str) -> list[dict[str, str]]:
    """The conversation as chat messages from the agent's side, starting with the opening cue.

    Example:
        ```python
        chat_messages([], "en")   # [{"role": "user", "content": "(A customer has just been connected to you.)"}]
        ```
    """
    messages: list[dict[str, str]] = []
    if not turns or turns[0].speaker == SUPPORTER:
        messages.append({"role": "user", "content": OPENING_CUE.get(language, OPENING_CUE["en"])})
    for turn in turns:
        role = "assistant" if turn.speaker == SUPPORTER else "user"
        if messages and messages[-1]["role"] == role:
            messages[-1] = {"role": role, "content": f"{messages[-1]['content']}\n{turn.text}"}
        else:
            messages.append({"role": role, "content": turn.text})
    return messages


class ChatCandidate:
    """A plain chat endpoint with a system prompt, unaware of strategies.

    Args:
        name: The candidate's label.
        system_prompt: The system prompt (e.g. read from the ``--system-prompt`` file).
        role: The role whose backend it calls (default ``arena_agent``: set ``[roles.arena_agent]``).
        source: Where the system prompt came from, for the record.
        attempts: Attempts at a non-empty reply.

    Example:
        ```python
        candidate = ChatCandidate("plain", Path("agent_prompt.txt").read_text())
        ```
    """

    def __init__(self, name: str, system_prompt: str, *, role: str = CHAT_ROLE, source: str | None = None,
                 attempts: int = 3) -> None:
        if not system_prompt.strip():
            raise ConfigError(f"candidate {name!r}: the system prompt is empty")
        self.name = _check_name(name)
        self.agent = ChatAgent(system_prompt.strip())
        self.role = role
        self.source = source
        self.attempts = attempts

    def respond(self, turns: list[Turn], *, language: str, domain: str) -> AgentTurn:
        """The endpoint's reply to the conversation so far (no strategy).

        Raises:
            GenerationFailure: the endpoint gave no text after the retries.
        """
        prediction = invoke(self.agent, role=self.role, attempts=self.attempts, validate=_has_reply,
                            messages=chat_messages(turns, language))
        return AgentTurn(text=prediction.reply, strategy=None)

    def describe(self) -> dict[str, Any]:
        """Kind, role, prompt source and the prompt's length."""
        return {"name": self.name, "kind": "chat", "role": self.role, "source": self.source,
                "system_prompt_chars": len(self.agent.system_prompt)}


def import_module_attr(spec: str) -> Any:
    """The object an import path ``package.module:attribute`` names; a class is instantiated without arguments.

    Raises:
        ConfigError: a malformed path, a module that does not import, a missing attribute, or a class that
            cannot be built without arguments.

    Example:
        ```python
        module = import_module_attr("my_agents.support:Agent")   # my_agents.support.Agent()
        ```
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(f"module candidate {spec!r}: expected an import path like package.module:attribute")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(f"module candidate {spec!r}: cannot import {module_name}: {error}") from None
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ConfigError(f"module candidate {spec!r}: {module_name} has no attribute {attribute}")
        target = getattr(target, part)
    if isinstance(target, type):
        try:
            target = target()
        except TypeError as error:
            raise ConfigError(f"module candidate {spec!r}: {attribute}() needs arguments: {error}") from None
    if not callable(target):
        raise ConfigError(f"module candidate {spec!r}: {attribute} is not a callable module")
    return target
