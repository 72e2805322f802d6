"""Serving a fine-tuned model without a server: transformers (base + adapter) vs llama.cpp (merged GGUF).

For a ``cscprog finetune`` output trained from a GGUF (the embedded model), this asks both routes the same
prompts (a supporter turn from the middle of each dialogue of DATA, in the training layout, greedy decoding)
and prints, per prompt, the seconds of each call and whether the two texts are identical, then the ratio of
the mean times measured in this one run. It also times one training step (forward + backward of one example)
when ``--train-step`` is given. Nothing is asserted: it reports what happened, including differing outputs.

Run (niced; minutes on 2 cores):
    python benchmarks/finetune_serving.py FT_DIR DATA [--prompts 2] [--max-tokens 48] [--train-step]

Example:
    ```
    python benchmarks/finetune_serving.py /tmp/t2/ft-run /tmp/t2/split/test.jsonl --prompts 2
    ```
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import dspy

from cscprog.config import load_config
from cscprog.data import read_dialogues
from cscprog.finetune.engine import AsyncTransformersEngine, TransformersEngine
from cscprog.finetune.program import CompletionAdapter, NextTurn
from cscprog.finetune.serve import finetuned_lm, load_finetuned
from cscprog.framework import load_taxonomy


def _prompts(data: Path, count: int) -> list[dict[str, str]]:
    found = []
    for dialogue in read_dialogues(data).dialogues:
        turns = dialogue.supporter_indices()
        if turns:  # a turn from the middle of the dialogue: a real history, not only the greeting
            index = turns[len(turns) // 2]
            found.append({"history": dialogue.transcript(index), "language": dialogue.language or "en",
                          "domain": dialogue.domain or ""})
        if len(found) == count:
            break
    return found


def _ask(lm: dspy.LM, adapter: CompletionAdapter, prompt: dict[str, str]) -> tuple[str, float]:
    messages = adapter.format(NextTurn, [], prompt)
    started = time.monotonic()
    text = lm(messages=messages)[0]
    return (text if isinstance(text, str) else str(text)), time.monotonic() - started


def _train_step(model_dir: Path, prompt: dict[str, str]) -> float:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = load_finetuned(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model.adapter_dir))
    network = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(model.base_dir)),
                                        str(model.adapter_dir), is_trainable=True)
    adapter = CompletionAdapter(load_taxonomy("csc"))
    text = tokenizer.apply_chat_template(adapter.format(NextTurn, [], prompt), tokenize=False)
    batch = tokenizer(text, return_tensors="pt")
    started = time.monotonic()
    loss = network(**batch, labels=batch["input_ids"]).loss
    loss.backward()
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--train-step", action="store_true")
    args = parser.parse_args()
    config = load_config(None)
    model = load_finetuned(args.model_dir)
    if model.gguf is None:
        raise SystemExit(f"{args.model_dir} has no merged GGUF (trained from a Hugging Face directory)")
    settings = config.lm_for("responder").model_copy(update={"temperature": 0.0, "max_tokens": args.max_tokens})
    served = finetuned_lm(model, settings, config.cache.path).copy(cache=False)
    engine = TransformersEngine(model.base_dir, model.adapter_dir, default_max_tokens=args.max_tokens)
    direct = dspy.LM(f"finetuned/{model.name}-transformers", engine=engine,
                     async_engine=AsyncTransformersEngine(engine), temperature=0.0, max_tokens=args.max_tokens,
                     cache=False)
    adapter = CompletionAdapter(load_taxonomy("csc"))
    rows = []
    for number, prompt in enumerate(_prompts(args.data, args.prompts)):
        gguf_text, gguf_s = _ask(served, adapter, prompt)
        hf_text, hf_s = _ask(direct, adapter, prompt)
        rows.append({"prompt": number, "llama_cpp_s": round(gguf_s, 2), "transformers_s": round(hf_s, 2),
                     "identical": gguf_text == hf_text, "llama_cpp": gguf_text, "transformers": hf_text})
        print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    summary = {
        "prompts": len(rows), "identical": sum(row["identical"] for row in rows),
        "llama_cpp_mean_s": round(sum(r["llama_cpp_s"] for r in rows) / len(rows), 2),
        "transformers_mean_s": round(sum(r["transformers_s"] for r in rows) / len(rows), 2),
        "merged_type": model.manifest["hyperparameters"].get("merged_type"), "max_tokens": args.max_tokens,
    }
    summary["transformers_over_llama_cpp"] = round(summary["transformers_mean_s"] / summary["llama_cpp_mean_s"], 1)
    if args.train_step:
        summary["train_step_s"] = round(_train_step(args.model_dir, _prompts(args.data, 1)[0]), 2)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
