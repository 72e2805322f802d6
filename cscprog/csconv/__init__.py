"""CSConv: real calls rewritten into strategy-labelled dialogues (rule pre-filter, LLM rewrite, post-filters).

The pipeline, in the order a call goes through it: :mod:`cscprog.csconv.prefilter` (rules on the raw call),
:mod:`cscprog.csconv.rewriter` (the LLM screen, the rewrite and the judge, as one DSPy module) and
:mod:`cscprog.csconv.postfilter` (rules on the rewrite).
"""
