"""DSPy signatures of cscprog: the declarative prompts of rewriting, classification, role-play and response.

Installed as ``cscprog.signatures``. Strategy fields are typed with the CSC labels; :func:`for_taxonomy` adapts a
signature to any other taxonomy.
"""

from cscprog.signatures.adapt import CscStrategy, for_taxonomy, strategy_guide, strategy_type
from cscprog.signatures.arena import PAIR_VERDICTS, CompareConversations, JudgeResolution, RateCall
from cscprog.signatures.classification import ClassifyStrategy, ClassifyStrategyWithRationale
from cscprog.signatures.guided import GuidedPredict, with_guide
from cscprog.signatures.judging import JUDGE_CRITERIA, CriterionVerdict, JudgeDialogue
from cscprog.signatures.pairwise import PAIR_CRITERIA, ComparePair, PairChoice
from cscprog.signatures.response import PredictStrategy, WriteReply
from cscprog.signatures.rewriting import (
    PLACEHOLDERS,
    JudgeRewrite,
    RewriteDialogue,
    RewrittenTurn,
    ScreenCall,
    judge_signature,
    rewrite_flow_rules,
    rewrite_signature,
    turn_model,
)
from cscprog.signatures.roleplay import (
    ChooseStrategy,
    DescribeProfile,
    DirectCustomer,
    PlanScenario,
    WriteCustomerTurn,
    WriteSupporterTurn,
    choose_strategy_for,
    flow_rules_text,
)

__all__ = [
    "PAIR_VERDICTS",
    "CompareConversations",
    "JudgeResolution",
    "RateCall",
    "PAIR_CRITERIA",
    "ComparePair",
    "PairChoice",
    "PLACEHOLDERS",
    "JudgeRewrite",
    "RewriteDialogue",
    "RewrittenTurn",
    "ScreenCall",
    "judge_signature",
    "rewrite_flow_rules",
    "rewrite_signature",
    "turn_model",
    "JUDGE_CRITERIA",
    "ClassifyStrategy",
    "ClassifyStrategyWithRationale",
    "ChooseStrategy",
    "choose_strategy_for",
    "CriterionVerdict",
    "CscStrategy",
    "DescribeProfile",
    "DirectCustomer",
    "flow_rules_text",
    "for_taxonomy",
    "GuidedPredict",
    "with_guide",
    "JudgeDialogue",
    "PlanScenario",
    "PredictStrategy",
    "strategy_guide",
    "strategy_type",
    "WriteCustomerTurn",
    "WriteReply",
    "WriteSupporterTurn",
]
