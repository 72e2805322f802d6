"""How well profile embeddings separate distinct profiles from paraphrases of one profile, per language.

Distinct pairs: every pair of packaged sample profiles of one language (14 English: 91 pairs; 6 Chinese: 15
pairs), compared as :func:`cscprog.rolecs.profiles.profile_text` gives them. Paraphrase pairs: a profile's
text against a rewording of the same facts written for this benchmark (:data:`PARAPHRASES`: fields reordered,
words changed, nothing added). For each embedder and language the script prints the distinct pairs' median
and maximum, the paraphrase pairs' minimum and median, and how many pairs of each kind a threshold (0.85, the
method's, by default) calls duplicates.

Usage::

    .venv/bin/python benchmarks/profile_similarity.py --embedder e5 --embedder wordllama
"""

from __future__ import annotations

import argparse
import sys
from itertools import combinations
from pathlib import Path
from statistics import median

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cscprog.rolecs.e5_embedder import E5Embedder  # noqa: E402
from cscprog.rolecs.profiles import WordLlamaEmbedder, profile_text  # noqa: E402
from cscprog.samples import load_profiles  # noqa: E402

PARAPHRASES = {
    "p-01": "A 34-year-old woman who works as a nurse in a hospital, shifts rotating. Lives in the inner city of a "
            "big metropolis. Caring and practical, though she snaps when exhausted. Wants the answer up front, "
            "details after, short and direct. Middle income. Holds a savings account and a credit card. Worried "
            "about surprise charges and about card safety when she shops online late at night. [Name].",
    "p-02": "[Name], male, 71, a retired postman in a little country town a long way from any branch. Chatty, "
            "friendly and quite trusting; polite, never in a hurry, tends to wander into family anecdotes. Low "
            "income. Pension deposit account and a current account. Concerns: scam phone calls, getting the "
            "hang of the mobile app.",
    "p-05": "[Name], a 19-year-old woman in her first year at university, living in halls in a university town. "
            "Anxious yet keen to learn; unsure of herself, says sorry often and asks very simple questions. "
            "Low income; a debit card and a student account. Worries: overdraft fees, starting a credit "
            "history, paying the rent on time.",
    "p-08": "[Name]: female, 63, an accountant who is partly retired, living in a seaside town full of "
            "retirees. Assertive and meticulous; speaks formally, repeats figures and terms, pushes back on "
            "vague replies. High income: a credit card, a wealth management fund, a fixed-term deposit. "
            "Cares about transparent fees, changing interest rates and planning an inheritance.",
    "p-10": "[Name], a 52-year-old man managing a construction site in a quickly growing suburb of new "
            "houses. Proud and impatient, complains fast; loud, cuts people off, demands a manager when "
            "displeased. Medium income. Has a credit card, a personal loan and a current account. Wants to "
            "repay the loan early; hates long waits on hold.",
    "p-13": "[Name], female, 67, a librarian now retired and lately widowed, in a peaceful village among hills. "
            "Gentle, courteous, worries easily; speaks slowly and carefully and wants each step confirmed "
            "before going on. Low income; savings, current and pension deposit accounts. Deals with her "
            "late husband's accounts and is wary of phishing messages.",
    "p-15": "[姓名]，男，48岁，在华南一个县城开五金店的个体户。人很精明，爱算账，脾气有点急；说话直截了当，"
            "每笔费用都要问个明白。收入中等，有借记卡、商户收款码和经营贷款，关心贷款利率和转账手续费。",
    "p-16": "[姓名]，女，66岁，退休的小学老师，住在北方一座省会城市的老城区。性格温和、小心，对新东西有点怕；"
            "说话慢，每一步都要反复确认。收入较低，有定期存款和养老金账户，担心电信诈骗，不太会用手机银行。",
    "p-17": "[姓名]，女，27岁，在一线城市的互联网公司做产品经理。理性、重效率，还有点挑剔；说话快，"
            "爱拿数据说事，讨厌套话。收入较高，持有信用卡、货币基金和理财产品，关注理财收益对比和信用卡积分权益。",
    "p-18": "[姓名]，男，35岁，在中部一个地级市送外卖。为人朴实，容易着急；说话口语化、简短，带些方言。"
            "收入不高，有信用卡和借记卡，操心信用卡逾期和工资什么时候到账。",
    "p-19": "[姓名]，女，41岁，东部沿海城市一家私立医院的行政主管。性格强势，特别在意服务态度；"
            "讲话有条理，碰到推诿就直接要投诉。收入中等，有住房贷款、信用卡和家庭理财账户，关心房贷提前还款和办事效率。",
    "p-20": "[姓名]，男，55岁，西南山区一个乡镇的农业合作社带头人。热情好客，喜欢拉家常；话多爱跑题，"
            "常常把客服当朋友聊。收入低，有借记卡和惠农贷款，关心贷款审批进度，也嫌网点离得太远。",
}
"""Rewordings of packaged profiles, written for this benchmark (the project's own words)."""


def _sim(vectors: np.ndarray, a: int, b: int) -> float:
    return float(vectors[a] @ vectors[b] / (np.linalg.norm(vectors[a]) * np.linalg.norm(vectors[b])))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--embedder", action="append", choices=["e5", "wordllama"], default=None)
    parser.add_argument("--threshold", type=float, action="append", default=None)
    args = parser.parse_args()
    embedders = {"e5": E5Embedder, "wordllama": WordLlamaEmbedder}
    thresholds = args.threshold or [0.85]
    profiles = load_profiles()
    for name in args.embedder or ["e5", "wordllama"]:
        embed = embedders[name]()
        for language in ("en", "zh"):
            chosen = [p for p in profiles if p.language == language]
            texts = [profile_text(p) for p in chosen]
            ids = [p.id for p in chosen]
            para_ids = [i for i in ids if i in PARAPHRASES]
            vectors = np.asarray(embed(texts + [PARAPHRASES[i] for i in para_ids]), dtype=np.float64)
            distinct = [_sim(vectors, a, b) for a, b in combinations(range(len(texts)), 2)]
            para = [_sim(vectors, ids.index(i), len(texts) + k) for k, i in enumerate(para_ids)]
            print(f"{name} {language}: distinct pairs {len(distinct)}: median {median(distinct):.3f}, "
                  f"max {max(distinct):.3f}; paraphrase pairs {len(para)}: min {min(para):.3f}, "
                  f"median {median(para):.3f}; gap (paraphrase min - distinct max) {min(para) - max(distinct):+.3f}")
            for threshold in thresholds:
                print(f"  threshold {threshold:.2f}: distinct pairs called duplicates "
                      f"{sum(s > threshold for s in distinct)}/{len(distinct)}, paraphrases caught "
                      f"{sum(s > threshold for s in para)}/{len(para)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
