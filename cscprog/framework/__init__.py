"""The CSC framework as data: stages, strategies, label parsing and flow rules.

Example:
    ```python
    from cscprog.framework import load_taxonomy

    csc = load_taxonomy()                  # the paper's 5 stages and 12 strategies
    csc.parse("策略7 信息传达").name         # 'Information Delivery'
    ```
"""

from cscprog.framework.flow import Violation, allowed_next, check_flow
from cscprog.framework.loading import BUILTIN_TAXONOMIES, load_taxonomy, strategy_names, taxonomy_from_dict
from cscprog.framework.taxonomy import ANY_STAGE, FlowRules, Stage, Strategy, Taxonomy, count_by, normalize_label

__all__ = [
    "ANY_STAGE",
    "BUILTIN_TAXONOMIES",
    "FlowRules",
    "Stage",
    "Strategy",
    "Taxonomy",
    "Violation",
    "allowed_next",
    "check_flow",
    "count_by",
    "load_taxonomy",
    "normalize_label",
    "strategy_names",
    "taxonomy_from_dict",
]
