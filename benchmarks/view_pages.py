"""The viewer at scale, and the screenshots of the README's viewer section.

What it measures: a dialogue page of ``--dialogues`` (10,000) dialogues (the 24 English sample dialogues repeated
under new ids, 14 turns each on average): the time to build the page in Python (read, flow checks, verdicts,
JSON), its size, and in headless Chromium the time from navigation until the first page of 20 dialogues is drawn,
then the time a strategy filter and a text search take over all of them.

With ``--screenshots DIR`` it also writes PNGs of the main pages (dialogues, a run, the confusion matrix, two runs
side by side, the blind rating page) made from the English sample and two scripted evaluation runs.

Usage:
    python benchmarks/view_pages.py                          # 10,000 dialogues
    python benchmarks/view_pages.py --screenshots docs/img   # and the screenshots
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cscprog.data import write_dialogues  # noqa: E402
from cscprog.framework import load_taxonomy  # noqa: E402
from cscprog.samples import load_sample  # noqa: E402
from cscprog.view.build import build_view  # noqa: E402
from tests.view.chromium import Browser, chromium_available  # noqa: E402

SUMMARY = "document.querySelector('[data-role=summary]')"


def measure(count: int, folder: Path) -> None:
    samples = load_sample("annotated_en")
    many = [d.model_copy(update={"id": f"{d.id}-{n}"}) for n in range(count // len(samples) + 1) for d in samples]
    data = folder / "many.jsonl"
    write_dialogues(data, many[:count])
    started = time.perf_counter()
    page = build_view([str(data)], folder / "many.html")
    built = time.perf_counter() - started
    print(f"{count} dialogues ({sum(len(d.turns) for d in many[:count])} turns): page built in {built:.2f} s, "
          f"{page.stat().st_size / 1e6:.1f} MB")
    with Browser() as browser:
        opened = browser.open(page)
        print(f"chromium: first page drawn {opened:.2f} s after navigation (scripts "
              f"{browser.eval('document.body.dataset.renderMs')} ms)")
        started = time.perf_counter()
        browser.select("#f-strategy", str(load_taxonomy("csc").names.index("Resolution Implementation")))
        shown = browser.eval(f"{SUMMARY}.dataset.dialogues")
        print(f"strategy filter: {time.perf_counter() - started:.2f} s ({shown} dialogues match)")
        started = time.perf_counter()
        browser.eval("document.querySelector('#f-search').value = 'refund';"
                     "document.querySelector('#f-search').dispatchEvent(new Event('input'))")
        browser.wait_for(f"{SUMMARY}.dataset.dialogues !== '{shown}'")
        print(f"text search: {time.perf_counter() - started:.2f} s including the 200 ms typing debounce "
              f"({browser.eval(f'{SUMMARY}.dataset.dialogues')} dialogues match)")


def screenshots(target: Path, folder: Path) -> None:
    from tests.view.conftest import make_runs

    run_a, run_b = make_runs(folder / "runs", limit=4)
    from cscprog.view.human_eval import write_study
    from cscprog.view.runs import load_run

    pages = {
        "view-dialogues": build_view(["sample:annotated_en"], folder / "d.html"),
        "view-compare": build_view([str(run_a), str(run_b)], folder / "c.html"),
    }
    first = load_run(run_a)
    study = write_study(first, load_run(run_b, dialogues=first.dialogues), folder / "study", limit=8)
    with Browser(width=1280, height=860) as browser:
        for name, page in pages.items():
            browser.open(page)
            browser.screenshot(target / f"{name}.png")
        browser.open(build_view([str(run_a)], folder / "r.html"))
        browser.click("button[data-tab=matrix]")
        browser.screenshot(target / "view-matrix.png")
        browser.open(study.page)
        browser.eval("localStorage.clear()")
        browser.open(study.page)
        browser.type_text("#rater", "ann")
        browser.click("input[data-criterion=problem_resolution][value=A]")
        browser.click("input[data-criterion=strategy_adherence][value=tie]")
        browser.eval("window.scrollTo(0, 0)")
        browser.screenshot(target / "human-eval.png")
    print("screenshots:", ", ".join(sorted(p.name for p in target.glob("*.png"))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialogues", type=int, default=10_000)
    parser.add_argument("--screenshots", type=Path, help="Write the README's screenshots into this folder.")
    args = parser.parse_args()
    if not chromium_available():
        sys.exit("chromium not found (apt-get install chromium)")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        measure(args.dialogues, Path(tmp))
        if args.screenshots:
            screenshots(args.screenshots, Path(tmp))
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
