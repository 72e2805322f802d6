"""Merge a trained LoRA adapter into the GGUF it was trained from, so llama.cpp serves the fine-tuned model.

Why a merged GGUF (measured on the 2-core development VM, 0.5B model, greedy decoding): serving the adapter
with ``transformers`` on CPU took 41-68 s a call (about 1.5 s per output token, float32, machine shared), while
llama.cpp serves a GGUF through the embedded engine (:mod:`cscprog.lm.local.engine`) at the embedded model's
speed, with grammar-free decoding, the prompt-prefix cache and no torch at serving time. See docs/finetune.md.

How: the base GGUF's metadata (architecture, tokenizer, chat template) and every tensor the adapter does not
touch are copied byte for byte (still Q4_K/Q6_K); each tensor the adapter changes is dequantized (the same
dequantization ``transformers`` trained on), ``scale * B @ A`` is added, and the sum is stored as ``merged_type``:
``f32`` keeps the trained weights exactly, ``f16`` and ``q8_0`` (default: smaller and faster on CPU) round them.
Outputs therefore match the trained model up to that rounding and to llama.cpp's own arithmetic; greedy
outputs were compared in docs/finetune.md.

Tensor names follow llama.cpp's (``blk.N.attn_q.weight`` for ``model.layers.N.self_attn.q_proj``); an adapter on a
module with no GGUF counterpart is refused.

Example:
    ```python
    from cscprog.finetune.gguf import merge_adapter

    merge_adapter(Path("base.gguf"), Path("out/adapter"), Path("out/model.gguf"), merged_type="q8_0")
    ```
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Literal

from cscprog.errors import ConfigError

__all__ = ["GGUF_NAMES", "MergedType", "adapter_deltas", "merge_adapter"]

logger = logging.getLogger(__name__)

MergedType = Literal["q8_0", "f16", "f32"]

GGUF_NAMES: dict[str, str] = {
    "q_proj": "attn_q",
    "k_proj": "attn_k",
    "v_proj": "attn_v",
    "o_proj": "attn_output",
    "gate_proj": "ffn_gate",
    "up_proj": "ffn_up",
    "down_proj": "ffn_down",
}
"""Hugging Face module name -> llama.cpp tensor name, for the decoder blocks."""

_LORA_A = re.compile(r"^(?P<prefix>.*\.layers\.(?P<layer>\d+)\.[a-z_]+\.(?P<module>[a-z_]+))\.lora_A\.weight$")


def adapter_deltas(adapter_dir: Path) -> dict[str, Any]:
    """``scale * B @ A`` of every adapted module, as float32 numpy arrays keyed by GGUF tensor name.

    Raises:
        ConfigError: the directory holds no PEFT LoRA adapter, or adapts a module without a GGUF counterpart.

    Example:
        ```python
        deltas = adapter_deltas(Path("out/adapter"))   # {'blk.0.attn_q.weight': array(...), ...}
        ```
    """
    from safetensors.torch import load_file

    config_file, weights_file = adapter_dir / "adapter_config.json", adapter_dir / "adapter_model.safetensors"
    if not config_file.is_file() or not weights_file.is_file():
        raise ConfigError(f"{adapter_dir}: no LoRA adapter here (adapter_config.json, adapter_model.safetensors)")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    scale = float(config["lora_alpha"]) / float(config["r"])
    weights = load_file(str(weights_file))
    deltas: dict[str, Any] = {}
    for key, lora_a in weights.items():
        if ".lora_A." not in key:
            continue
        match = _LORA_A.match(key)
        if match is None or match["module"] not in GGUF_NAMES:
            raise ConfigError(f"{adapter_dir}: cannot merge {key!r} into a GGUF (adapt only {', '.join(GGUF_NAMES)})")
        lora_b = weights[f"{match['prefix']}.lora_B.weight"]
        delta = (lora_b.double() @ lora_a.double()) * scale
        deltas[f"blk.{match['layer']}.{GGUF_NAMES[match['module']]}.weight"] = delta.float().numpy()
    if not deltas:
        raise ConfigError(f"{adapter_dir}: the adapter has no LoRA weights")
    return deltas


def _store(gguf: Any, array: Any, merged_type: MergedType) -> tuple[Any, Any]:
    import numpy as np

    if merged_type == "f32":
        return array.astype(np.float32), None
    if merged_type == "f16":
        return array.astype(np.float16), None
    quantized = gguf.quants.quantize(array, gguf.GGMLQuantizationType.Q8_0)
    return quantized, gguf.GGMLQuantizationType.Q8_0


def merge_adapter(base_gguf: Path, adapter_dir: Path, target: Path, *, merged_type: MergedType = "q8_0") -> Path:
    """Write ``target``: ``base_gguf`` with the adapter of ``adapter_dir`` merged in (see the module docstring).

    Args:
        base_gguf: The GGUF the adapter was trained on (dequantized).
        adapter_dir: A PEFT LoRA adapter directory.
        target: The GGUF to write (atomically).
        merged_type: How adapted tensors are stored: ``q8_0``, ``f16`` or ``f32``.

    Returns:
        ``target``.

    Raises:
        ConfigError: as :func:`adapter_deltas`, or an adapted tensor is missing from the base or has another shape.

    Example:
        ```python
        merge_adapter(base.gguf, out / "adapter", out / f"{base.name}-ft.gguf")
        ```
    """
    import gguf
    import numpy as np

    deltas = adapter_deltas(adapter_dir)
    reader = gguf.GGUFReader(str(base_gguf))
    architecture = reader.fields["general.architecture"].contents()
    partial = target.with_name(target.name + ".partial")
    writer = gguf.GGUFWriter(str(partial), arch=architecture, endianess=reader.endianess)
    try:
        for field in reader.fields.values():
            if field.name.startswith("GGUF.") or field.name in ("general.architecture", "general.name"):
                continue
            sub_type = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(field.name, field.contents(), field.types[0], sub_type=sub_type)
        writer.add_string("general.name", target.stem)
        for tensor in reader.tensors:
            delta = deltas.pop(tensor.name, None)
            if delta is None:
                writer.add_tensor(tensor.name, tensor.data, raw_shape=tensor.data.shape, raw_dtype=tensor.tensor_type)
                continue
            weight = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
            if weight.shape != delta.shape:
                raise ConfigError(f"{base_gguf}: tensor {tensor.name} has shape {weight.shape}, the adapter's "
                                  f"update {delta.shape}: the adapter was trained on another model")
            data, raw_type = _store(gguf, weight + delta, merged_type)
            writer.add_tensor(tensor.name, data, raw_shape=data.shape if raw_type else None, raw_dtype=raw_type)
        if deltas:
            raise ConfigError(f"{base_gguf}: no tensor {sorted(deltas)[0]} for the adapter (another model?)")
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(partial, target)
    finally:
        writer.close()
        partial.unlink(missing_ok=True)
    return target
