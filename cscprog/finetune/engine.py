"""A DSPy engine that runs a ``transformers`` model with a LoRA adapter in-process (no server).

This serves a model fine-tuned from a Hugging Face directory, which has no GGUF to merge into (a model fine-tuned
from a GGUF is served by llama.cpp instead: :mod:`cscprog.finetune.gguf`). Greedy decoding unless the request
asks for a temperature; a sampled call seeds torch with the request's seed first, so a request gives the same
text each time. Calls are serialized by a lock; the model loads on the first call, on CUDA when present.

Example:
    ```python
    engine = TransformersEngine(Path("base"), Path("out/adapter"))
    lm = dspy.LM("finetuned/my-model", engine=engine, async_engine=AsyncTransformersEngine(engine))
    ```
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path
from typing import Any

from dspy.lm15 import Message, Request, Response, TextPart, Usage

from cscprog.lm.local.messages import chat_messages

__all__ = ["AsyncTransformersEngine", "TransformersEngine"]

SUPPORTED_PARAMS = frozenset({"temperature", "max_tokens", "seed", "stop", "top_p", "top_k"})
DEFAULT_MAX_TOKENS = 256


class TransformersEngine:
    """``complete(Request) -> Response`` over a causal LM plus an optional PEFT adapter.

    Args:
        base_dir: The base model directory (``from_pretrained``).
        adapter_dir: A PEFT adapter directory (its tokenizer is used when it has one), or None.
        default_max_tokens: Output budget when the request names none.

    Example:
        ```python
        TransformersEngine(base.hf_dir, out / "adapter").complete(request)
        ```
    """

    supports_function_calling = False
    supports_reasoning = False
    supports_response_schema = False
    supported_params = SUPPORTED_PARAMS

    def __init__(self, base_dir: Path, adapter_dir: Path | None = None, *,
                 default_max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        self.base_dir = Path(base_dir)
        self.adapter_dir = Path(adapter_dir) if adapter_dir is not None else None
        self.default_max_tokens = default_max_tokens
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            cuda = torch.cuda.is_available()
            dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
            tokenizer_dir = self.adapter_dir if self.adapter_dir and (
                self.adapter_dir / "tokenizer_config.json").is_file() else self.base_dir
            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
            model = AutoModelForCausalLM.from_pretrained(str(self.base_dir), dtype=dtype)
            if self.adapter_dir is not None:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, str(self.adapter_dir))
            model.to("cuda" if cuda else "cpu").eval()
            self._model, self._tokenizer = model, tokenizer
        return self._model, self._tokenizer

    def complete(self, request: Request) -> Response:
        """One chat completion with the tokenizer's chat template."""
        import torch

        config = request.config
        with self._lock:
            model, tokenizer = self._load()
            inputs = tokenizer.apply_chat_template(chat_messages(request), add_generation_prompt=True,
                                                   return_tensors="pt", return_dict=True).to(model.device)
            temperature = config.temperature or 0.0
            options: dict[str, Any] = {"max_new_tokens": config.max_tokens or self.default_max_tokens,
                                       "do_sample": temperature > 0, "pad_token_id": tokenizer.pad_token_id}
            if temperature > 0:
                torch.manual_seed(config.seed or 0)
                options.update(temperature=temperature, top_p=config.top_p or 1.0, top_k=config.top_k or 0)
            if config.stop:
                options.update(stop_strings=list(config.stop), tokenizer=tokenizer)
            with torch.no_grad():
                # Only what a causal LM's generate takes: some tokenizers (under transformers 4) also return
                # token_type_ids, which generate refuses.
                output = model.generate(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                        **options)
        prompt_tokens = int(inputs["input_ids"].shape[1])
        new = output[0][prompt_tokens:]
        text = tokenizer.decode(new, skip_special_tokens=True)
        for stop in config.stop:
            text = text.split(stop)[0]
        finished = len(new) < options["max_new_tokens"] or int(new[-1]) == tokenizer.eos_token_id
        return Response(id=f"transformers-{uuid.uuid4().hex[:16]}", model=request.model,
                        message=Message.assistant([TextPart(text)]),
                        finish_reason="stop" if finished else "length",
                        usage=Usage(input_tokens=prompt_tokens, output_tokens=int(len(new))))

    def stream(self, request: Request) -> Any:
        """Streaming is not implemented."""
        raise NotImplementedError("the transformers engine does not stream")

    def close(self) -> None:
        """Drop the loaded model."""
        with self._lock:
            self._model = self._tokenizer = None

    def dump_state(self) -> dict[str, Any]:
        """Settings to rebuild the engine (weights are not saved)."""
        return {"base_dir": str(self.base_dir), "adapter_dir": str(self.adapter_dir) if self.adapter_dir else None,
                "default_max_tokens": self.default_max_tokens}

    @classmethod
    def load_state(cls, state: dict[str, Any]) -> TransformersEngine:
        """Rebuild an engine from :meth:`dump_state`."""
        adapter = state.get("adapter_dir")
        return cls(Path(state["base_dir"]), Path(adapter) if adapter else None,
                   default_max_tokens=state.get("default_max_tokens", DEFAULT_MAX_TOKENS))


class AsyncTransformersEngine:
    """The async counterpart of :class:`TransformersEngine` (runs calls in a worker thread).

    Example:
        ```python
        AsyncTransformersEngine(engine)
        ```
    """

    supports_function_calling = False
    supports_reasoning = False
    supports_response_schema = False
    supported_params = SUPPORTED_PARAMS

    def __init__(self, engine: TransformersEngine) -> None:
        self.engine = engine

    async def complete(self, request: Request) -> Response:
        """Run :meth:`TransformersEngine.complete` off the event loop."""
        return await asyncio.to_thread(self.engine.complete, request)

    def stream(self, request: Request) -> Any:
        """Streaming is not implemented."""
        raise NotImplementedError("the transformers engine does not stream")

    async def aclose(self) -> None:
        """Close the wrapped engine."""
        self.engine.close()
