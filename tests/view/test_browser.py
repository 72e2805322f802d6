"""The pages in a real headless Chromium: what a person sees, what a filter or a click changes, what is exported."""

from __future__ import annotations

import json
import time

import pytest

from cscprog.cli import main
from cscprog.csconv.rewriter import RewriteDecision
from cscprog.data import Dialogue, Scenario, Turn, write_dialogues
from cscprog.framework import check_flow, load_taxonomy
from cscprog.samples import load_profiles, load_sample
from cscprog.view.build import build_view
from cscprog.view.human_eval import write_study
from cscprog.view.runs import load_run
from tests.view.conftest import generated_run

CSC = load_taxonomy("csc")
SUMMARY = "document.querySelector('[data-role=summary]')"


def rendered_turns_over_all_pages(browser) -> int:
    """Walk the pager from its first page to its last, clicking 'next', and count the turns shown."""
    total = 0
    while True:
        total += browser.eval("document.querySelectorAll('[data-role=list] [data-role=turn]').length")
        if browser.eval("document.querySelector('[data-role=next]').disabled"):
            return total
        page = browser.eval("document.querySelector('[data-role=list]').dataset.page")
        browser.click("[data-role=next]")
        browser.wait_for(f"document.querySelector('[data-role=list]').dataset.page !== '{page}'")


def test_dialogue_page_shows_every_turn_and_filters_change_it(tmp_path, browser):
    dialogues = load_sample("annotated_en")
    page = tmp_path / "page.html"
    assert main(["view", "sample:annotated_en", "-o", str(page)]) == 0
    browser.open(page)
    assert browser.errors == []
    total_turns = sum(len(d.turns) for d in dialogues)
    assert browser.eval(f"{SUMMARY}.dataset.turns") == str(total_turns)
    assert rendered_turns_over_all_pages(browser) == total_turns
    # supporter turns carry their strategy colour chip; stage bands follow the taxonomy
    assert browser.eval("document.querySelector('[data-role=turn][data-speaker=S] .chip').dataset.strategy") == \
        dialogues[0].turns[0].strategy
    assert browser.eval("document.querySelectorAll('[data-role=band]').length") > 0

    wanted = "Resolution Implementation"
    expected = [d for d in dialogues if wanted in d.supporter_strategies()]
    assert 0 < len(expected) < len(dialogues)
    browser.select("#f-strategy", str(CSC.names.index(wanted)))
    assert browser.eval(f"{SUMMARY}.dataset.dialogues") == str(len(expected))
    shown = browser.eval("[...document.querySelectorAll('[data-role=dialogue]')].map(e => e.dataset.id)")
    assert shown == [d.id for d in expected][:20]
    browser.select("#f-strategy", "")

    needle = dialogues[3].turns[1].text[5:25]
    browser.type_text("#f-search", needle)
    matching = [d for d in dialogues if any(needle.lower() in t.text.lower() for t in d.turns)]
    browser.wait_for(f"{SUMMARY}.dataset.dialogues === '{len(matching)}'", timeout=5)
    assert browser.eval("document.querySelectorAll('[data-role=list] mark').length") >= 1


def test_verdicts_drop_reasons_flow_flags_and_hostile_text(tmp_path, browser):
    base = load_sample("annotated_en")[:3]
    broken = Dialogue(id="broken", domain="other", turns=[
        Turn(speaker="supporter", strategy="Information Delivery", text="</script><img src=x onerror=window.pwned=1>"),
        Turn(speaker="customer", text="<b>bold?</b>"),
        Turn(speaker="supporter", strategy="Information Delivery", text="Again."),
        Turn(speaker="customer", text="ok"),
        Turn(speaker="supporter", strategy="Information Delivery", text="And again."),
    ])
    write_dialogues(tmp_path / "out.jsonl", [*base, broken])
    drop = RewriteDecision(False, "judge", "quality", "judged 'medium': the call is cut off").to_json()
    write_dialogues(tmp_path / "out.dropped.jsonl", [base[0].model_copy(update={"id": "gone", "metadata": {
        "rewrite": drop, "judge": {"quality": "medium", "reason": "the call is cut off"}}})])
    page = build_view([str(tmp_path / "out.jsonl")], tmp_path / "v.html")
    browser.open(page)
    assert browser.eval("window.pwned === undefined && document.querySelectorAll('main img, main b.x').length === 0")
    assert browser.eval("document.body.textContent.includes('</script><img src=x onerror=window.pwned=1>')")

    browser.select("#f-verdict", "dropped")
    assert browser.eval(f"{SUMMARY}.dataset.dialogues") == "1"
    verdict = browser.eval("document.querySelector('[data-role=verdict]').textContent")
    assert "judge: quality" in verdict and "the call is cut off" in verdict
    browser.select("#f-verdict", "")

    browser.select("#f-stage", str([s.name for s in CSC.stages].index("Maintaining")))
    shown = [*base, broken, base[0]]  # base[0] again: the dropped copy
    in_stage = [d for d in shown if any(CSC.stage_of(n) == "Maintaining" for n in d.supporter_strategies())]
    assert browser.eval(f"{SUMMARY}.dataset.dialogues") == str(len(in_stage))
    browser.select("#f-stage", "")

    browser.select("#f-flow", "bad")
    flawed = [d for d in shown if check_flow(d.supporter_strategies(), CSC)]
    assert browser.eval(f"{SUMMARY}.dataset.dialogues") == str(len(flawed))
    flags = browser.eval("document.querySelectorAll('[data-id=broken] [data-role=flow-flag]').length")
    assert flags == len({v.position for v in check_flow(broken.supporter_strategies(), CSC) if v.position is not None})


def test_run_page_filters_and_the_confusion_matrix_opens_its_turns(tmp_path, browser, eval_runs):
    run = load_run(eval_runs[0])
    page = tmp_path / "run.html"
    assert main(["view", str(eval_runs[0]), "-o", str(page)]) == 0
    browser.open(page)
    assert browser.eval(f"{SUMMARY}.dataset.rows") == str(len(run.records))
    wrong = [r for r in run.records if r["pred_strategy"] != r["gold_strategy"]]
    browser.select("#f-outcome-0", "wrong")
    assert browser.eval(f"{SUMMARY}.dataset.rows") == str(len(wrong))
    assert set(browser.eval("[...document.querySelectorAll('[data-role=prediction]')].map(e => e.dataset.correct)")) \
        == {"0"}

    browser.click("button[data-tab=matrix]")
    cell = wrong[0]
    gold, pred = CSC.names.index(cell["gold_strategy"]), CSC.names.index(cell["pred_strategy"])
    count = sum(r["gold_strategy"] == cell["gold_strategy"] and r["pred_strategy"] == cell["pred_strategy"]
                for r in run.records)
    selector = f"td.cell[data-gold='{gold}'][data-pred='{pred}']"
    assert browser.eval(f"document.querySelector(\"{selector}\").dataset.count") == str(count)
    browser.click(selector)
    assert browser.eval("CSC.currentTab") == "turns"
    assert browser.eval(f"{SUMMARY}.dataset.rows") == str(count)
    ids = browser.eval("[...document.querySelectorAll('[data-role=row]')]"
                       ".map(e => e.dataset.id + '#' + e.dataset.turn)")
    assert f"{cell['dialogue_id']}#{cell['turn_index']}" in ids


def test_generated_context_history_shows_the_models_own_turns(tmp_path, browser):
    run = generated_run(tmp_path)
    page = build_view([str(run)], tmp_path / "gen.html")
    browser.open(page)
    later = browser.eval("[...document.querySelectorAll('[data-role=row]')].findIndex(e => e.dataset.turn !== '0')")
    history = browser.eval(f"[...document.querySelectorAll('[data-role=row]')[{later}]"
                           ".querySelectorAll('[data-role=history-turn][data-speaker=S]')].map(e => e.textContent)")
    assert history and all("[g]" in text for text in history)  # not the gold supporter turns
    assert browser.eval(f"document.querySelectorAll('[data-role=row]')[{later}].querySelectorAll('.own').length") \
        == len(history)


def test_two_runs_side_by_side(tmp_path, browser, eval_runs):
    page = build_view([str(p) for p in eval_runs], tmp_path / "cmp.html")
    browser.open(page)
    first = browser.eval("[...document.querySelector('[data-role=row]').querySelectorAll('[data-role=prediction]')]"
                         ".map(e => e.querySelector('h4').textContent)")
    assert [text[:5] for text in first] == ["run_a", "run_b"]
    browser.select("#f-same", "different")
    different = sum(1 for a, b in zip(load_run(eval_runs[0]).records, load_run(eval_runs[1]).records, strict=True)
                    if a["pred_strategy"] != b["pred_strategy"])
    assert browser.eval(f"{SUMMARY}.dataset.rows") == str(different)


def test_human_eval_round_trip_page_to_ratings_to_scores(tmp_path, browser, eval_runs, capsys):
    first = load_run(eval_runs[0])
    study = write_study(first, load_run(eval_runs[1], dialogues=first.dialogues), tmp_path / "study", limit=4)
    key = json.loads(study.key.read_text())
    browser.open(study.page)
    browser.eval("localStorage.clear()")
    browser.open(study.page)
    downloads = tmp_path / "downloads"
    browser.allow_downloads(downloads)
    browser.type_text("#rater", "ann")
    items = browser.eval("[...document.querySelectorAll('[data-role=item]')].map(e => e.dataset.item)")
    assert len(items) == 4 and set(items) == set(key["items"])
    for criterion in key["criteria"]:
        browser.click(f"input[data-item='{items[0]}'][data-criterion='{criterion}'][value='A']")
        browser.click(f"input[data-item='{items[1]}'][data-criterion='{criterion}'][value='tie']")
    assert browser.eval("document.querySelector('[data-role=progress]').dataset.done") == "2"
    browser.type_text(f"textarea[data-item='{items[1]}']", "both are polite; neither answers")
    # The page saves on every input event; wait until the browser has stored the last one before reloading.
    browser.wait_for("Object.values(localStorage).some(v => v.includes('neither answers') && v.includes('ann'))")
    browser.open(study.page)  # saved in the browser: still there after a reload
    assert browser.eval("document.querySelector('[data-role=progress]').dataset.done") == "2"
    browser.click("#export")
    deadline = time.monotonic() + 10
    while not list(downloads.glob("ratings-*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    exported = next(downloads.glob("ratings-*.json"))
    ratings = json.loads(exported.read_text())
    assert ratings["rater"] == "ann" and ratings["study"] == study.study
    assert ratings["ratings"][items[0]]["choices"] == dict.fromkeys(key["criteria"], "A")
    assert ratings["ratings"][items[1]]["comment"] == "both are polite; neither answers"

    target = study.key.with_name(exported.name)
    target.write_bytes(exported.read_bytes())
    capsys.readouterr()
    assert main(["human-eval", "--score", str(target), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    winner = key["items"][items[0]]["A"]
    resolution = report["criteria"]["problem_resolution"]
    assert resolution["judgments"] == 2 and resolution["win_rate"][winner]["count"] == 1
    assert resolution["win_rate"]["tie"]["count"] == 1
    assert report["comments"] == {"ann": {items[1]: "both are polite; neither answers"}}


def test_a_generated_run_beside_a_reference_run_shows_its_own_history(tmp_path, browser, eval_runs):
    generated = generated_run(tmp_path)
    page = build_view([str(eval_runs[0]), str(generated)], tmp_path / "mixed.html")
    browser.open(page)
    assert browser.errors == []
    rows = "[...document.querySelectorAll('[data-role=row]')]"
    later = browser.eval(f"{rows}.findIndex(e => e.dataset.turn !== '0')")
    turn = int(browser.eval(f"{rows}[{later}].dataset.turn"))
    dialogue = next(d for d in load_sample("annotated_en") if d.id == browser.eval(f"{rows}[{later}].dataset.id"))
    earlier = sum(1 for t in dialogue.turns[:turn] if t.is_supporter)
    cards = f"{rows}[{later}].querySelectorAll('[data-role=prediction]')"
    assert browser.eval(f"{cards}[0].querySelectorAll('[data-role=own-turn]').length") == 0  # reference: gold history
    own = browser.eval(f"[...{cards}[1].querySelectorAll('[data-role=own-turn]')].map(e => e.textContent)")
    assert len(own) == earlier > 0 and all("[g]" in text for text in own)
    assert "gold; a generated-context run" in browser.eval(f"{rows}[{later}].querySelector('summary').textContent")


@pytest.mark.slow
def test_ten_thousand_dialogues_open_and_filter_without_freezing(tmp_path, browser):
    samples = load_sample("annotated_en")
    many = [d.model_copy(update={"id": f"{d.id}-{n}"}) for n in range(417) for d in samples][:10_000]
    page = build_view([str(_write(tmp_path, many))], tmp_path / "big.html")
    seconds = browser.open(page)
    print(f"10,000 dialogues: {page.stat().st_size / 1e6:.1f} MB page, opened in {seconds:.2f} s, first render "
          f"{browser.eval('document.body.dataset.renderMs')} ms")
    assert browser.eval(f"{SUMMARY}.dataset.dialogues") == "10000"
    started = time.monotonic()
    browser.select("#f-strategy", str(CSC.names.index("Resolution Implementation")))
    by_strategy = browser.eval(f"{SUMMARY}.dataset.dialogues")
    selected = time.monotonic() - started
    started = time.monotonic()
    browser.eval("document.querySelector('#f-search').value = 'card'; "
                 "document.querySelector('#f-search').dispatchEvent(new Event('input'))")
    browser.wait_for(f"{SUMMARY}.dataset.dialogues !== '{by_strategy}'")
    searched = time.monotonic() - started
    print(f"over 10,000 dialogues: strategy filter {selected:.2f} s, text search {searched:.2f} s (with the 200 ms "
          "typing debounce)")
    # Speed is measured by benchmarks/view_pages.py; what keeps the page from freezing is that it draws one page
    # of dialogues at a time, whatever the data's size, and filters over the data rather than the DOM.
    assert int(by_strategy) < 10_000
    assert browser.eval("document.querySelectorAll('[data-role=dialogue]').length") <= 20


def _write(folder, dialogues):
    path = folder / "many.jsonl"
    write_dialogues(path, dialogues)
    return path


def test_arena_conversations_filter_by_candidate(tmp_path, browser):
    dialogues = load_sample("annotated_en")[:5]
    profile = load_profiles()[0]
    dialogues[0] = dialogues[0].model_copy(update={"profile": profile, "scenario": Scenario(topic="other",
                                                                                            goal="a new card")})
    records = [{"id": f"c{n}", "candidate": "base" if n % 2 else "plain", "customer_id": f"c{n}", "topic": "other",
                "trial": 0, "scores": {"resolved": n < 3, "resolution_reason": "why"}, "dialogue": d.to_json()}
               for n, d in enumerate(dialogues)]
    (tmp_path / "conversations.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    browser.open(build_view([str(tmp_path / "conversations.jsonl")], tmp_path / "arena.html"))
    card = "document.querySelector('[data-role=dialogue]')"
    assert browser.eval(f"{card}.textContent.includes('customer profile') && {card}.textContent.includes('a new card')")
    assert browser.eval(f"{card}.textContent.includes({json.dumps(profile.id)})")
    browser.select("#f-candidate", "plain")
    assert browser.eval(f"{SUMMARY}.dataset.dialogues") == "3"
    browser.select("#f-verdict", "unresolved")
    assert browser.eval(f"{SUMMARY}.dataset.dialogues") == "1"
    assert "plain: unresolved" in browser.eval("document.querySelector('[data-role=verdict]').textContent")


def test_chinese_dialogues_speak_chinese(tmp_path, browser):
    browser.open(build_view(["sample:annotated_zh"], tmp_path / "zh.html"))
    assert browser.eval("document.querySelector('[data-role=turn][data-speaker=S] .who').textContent") == "客服"
    first = load_sample("annotated_zh")[0]
    stage = CSC.stage(CSC.stage_of(first.turns[first.supporter_indices()[0]].strategy))
    assert browser.eval("document.querySelector('[data-role=band] .band-label').textContent") == \
        f"{stage.name} · {stage.zh}"
    dialogues = load_sample("annotated_zh")
    assert browser.eval(f"{SUMMARY}.dataset.turns") == str(sum(len(d.turns) for d in dialogues))
