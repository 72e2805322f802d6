"""Record this folder's cache bundle and outputs with the code of commit fd3538f (before the layout of issue 11).

Run with a cscprog installed from that commit (not with today's code: the point is an old recording):

    git worktree add ../old fd3538f && python -m venv /tmp/old && /tmp/old/bin/pip install ../old
    /tmp/old/bin/python tests/data/layout_v0/record.py tests/data/layout_v0 /tmp/layout_v0_work

A loopback OpenAI-compatible server answers (strategies chosen by a hash of the prompt, every other field the
scripted default); ``annotate`` and ``respond`` run on ``input.jsonl`` and fill the response cache, which is
exported as ``bundle.jsonl.gz``. ``tests/cache/test_layout_v0_replay.py`` replays both commands from the bundle
on today's code and compares the outputs byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from cscprog.testing import OpenAICompatibleServer
from cscprog.testing.engines import default_answer

STRATEGIES = ("Greeting", "Identity Verification", "Emotional Management", "Information Delivery")
COMMANDS = (["annotate", "input.jsonl", "-o", "annotated.jsonl"], ["respond", "input.jsonl", "-o", "responses.jsonl"])
DIALOGUES = [
    {"id": "v0-1", "domain": "parcel_delivery", "language": "en", "turns": [
        {"speaker": "supporter", "strategy": None, "text": "Hello, parcel help desk, what can I do for you?"},
        {"speaker": "customer", "strategy": None, "text": "My parcel says delivered but nothing is at my door."},
        {"speaker": "supporter", "strategy": None, "text": "Sorry about that. Could you read me the tracking code?"},
        {"speaker": "customer", "strategy": None, "text": "It is PX-4471."}]},
    {"id": "v0-2", "domain": "card_services", "language": "en", "turns": [
        {"speaker": "supporter", "strategy": None, "text": "Good morning, card services here."},
        {"speaker": "customer", "strategy": None, "text": "I want to raise the limit on my card."},
        {"speaker": "supporter", "strategy": None, "text": "I can help with that. What limit would you like?"},
        {"speaker": "customer", "strategy": None, "text": "Two thousand would be fine, thanks."}]},
]


def answer(field: str, request) -> str:
    """Strategies vary with the prompt (a stable hash); every other field gets the scripted default."""
    if field == "strategy":
        return STRATEGIES[int(hashlib.sha256(request.last.encode("utf-8")).hexdigest()[:8], 16) % len(STRATEGIES)]
    return default_answer(field, request)


def record(out: Path, work: Path) -> None:
    """Write ``input.jsonl``, ``cscprog.toml``, the outputs and ``bundle.jsonl.gz`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cscprog = str(Path(sys.executable).with_name("cscprog"))
    env = {name: value for name, value in os.environ.items() if not name.startswith("CSCPROG_")}
    (out / "input.jsonl").write_text("".join(json.dumps(d) + "\n" for d in DIALOGUES), encoding="utf-8")
    with OpenAICompatibleServer(answer=answer) as server:
        (out / "cscprog.toml").write_text(f'[lm]\nmodel = "openai/test-model"\napi_base = "{server.url}"\n'
                                          'temperature = 0.0\n\n[cache]\ndir = "cache"\n\n[run]\nconcurrency = 1\n',
                                          encoding="utf-8")
        for name in ("cscprog.toml", "input.jsonl"):
            shutil.copy(out / name, work / name)
        for command in COMMANDS:
            subprocess.run([cscprog, *command, "--progress", "off"], cwd=work, env=env, check=True)
    subprocess.run([cscprog, "cache", "export", str((out / "bundle.jsonl.gz").resolve())], cwd=work, env=env,
                   check=True)
    for command in COMMANDS:
        shutil.copy(work / command[3], out / command[3])


if __name__ == "__main__":
    record(Path(sys.argv[1]), Path(sys.argv[2]))
