"""The packaged samples: sizes, coverage and the rules the pipelines rely on."""

from __future__ import annotations

from cscprog.data import dataset_stats
from cscprog.framework import check_flow, load_taxonomy
from cscprog.samples import load_profiles, load_sample

DOMAINS = {"account_transactions", "product_consultation", "technical_faults", "complaints", "marketing_campaigns",
           "risk_security", "financial_planning", "other"}


def test_annotated_samples_cover_every_strategy_and_domain():
    csc = load_taxonomy()
    for name, size, language in (("annotated_en", 24, "en"), ("annotated_zh", 12, "zh")):
        dialogues = load_sample(name)
        assert len(dialogues) == size and all(d.language == language for d in dialogues)
        stats = dataset_stats(dialogues)
        assert all(count > 0 for count in stats["strategy_counts"].values()), stats["strategy_counts"]
        assert set(stats["domains"]) == DOMAINS
        for dialogue in dialogues:
            assert dialogue.is_annotated and dialogue.is_alternating()
            assert check_flow(dialogue.supporter_strategies(), csc) == [], dialogue.id


def test_raw_and_profiles():
    raw = load_sample("raw")
    assert len(raw) == 12 and not any(d.is_annotated for d in raw)
    profiles = load_profiles()
    assert len(profiles) == 20 and len({p.id for p in profiles}) == 20
    assert sum(bool(p.description) for p in profiles) == 10
