"""The arena: support agents in front of simulated customers, judged on whole conversations.

The paper's metrics judge one reply against a gold reply; a support team judges an agent by whole calls. The
arena seats a candidate agent (:mod:`cscprog.arena.candidates`: a cscprog program, any DSPy module, or a plain
chat endpoint) in the supporter's chair of a RoleCS conversation, in front of customers planned once from
profiles x topics (:mod:`cscprog.arena.customers`), for seeded trials (:mod:`cscprog.arena.simulate`). Each
conversation is scored (:mod:`cscprog.arena.scores`: resolution judged from the customer's goal, strategy
adherence, flow rules, stage coverage, turns to resolution, repetition, the customer's satisfaction); the scores
are aggregated with bootstrap intervals over customers (:mod:`cscprog.arena.aggregate`), with pass^k over the
trials (:mod:`cscprog.arena.passk`) and a pairwise judge in both orders (:mod:`cscprog.arena.pairwise`).
:func:`run_arena` (:mod:`cscprog.arena.run`) runs it all through :class:`cscprog.runs.Runner` and writes
``result.json``, ``report.md`` and plots.

Example:
    ```python
    from pathlib import Path
    from cscprog.agents.responder import ResponseGenerator
    from cscprog.arena import ArenaSettings, ChatCandidate, ModuleCandidate, run_arena
    from cscprog.rolecs.plan import TOPICS, synthesis_plan
    from cscprog.samples import load_profiles

    candidates = [ModuleCandidate("base", ResponseGenerator()), ChatCandidate("plain", "You are a bank agent.")]
    plan = synthesis_plan(load_profiles(), TOPICS, n=10, seed=1234)
    with runtime.activate():
        outcome = run_arena(candidates, plan, ArenaSettings(output_dir=Path("runs/arena"), trials=3))
    ```
"""

from cscprog.arena.candidates import AgentTurn, Candidate, ChatCandidate, ModuleCandidate, import_module_attr
from cscprog.arena.customers import ArenaCustomer, CustomerPlanner
from cscprog.arena.judges import ResolutionJudge, SatisfactionSurvey
from cscprog.arena.pairwise import ConversationPairJudge, PairVerdict
from cscprog.arena.passk import pass_hat_k, task_pass_hat_k
from cscprog.arena.run import ArenaOutcome, ArenaSettings, arena_roles, run_arena
from cscprog.arena.simulate import ArenaSimulator, conversation_id

__all__ = [
    "AgentTurn",
    "ArenaCustomer",
    "ArenaOutcome",
    "ArenaSettings",
    "ArenaSimulator",
    "Candidate",
    "ChatCandidate",
    "ConversationPairJudge",
    "CustomerPlanner",
    "ModuleCandidate",
    "PairVerdict",
    "ResolutionJudge",
    "SatisfactionSurvey",
    "arena_roles",
    "conversation_id",
    "import_module_attr",
    "pass_hat_k",
    "run_arena",
    "task_pass_hat_k",
]
