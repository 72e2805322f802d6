"""llama-cpp-python: importing it, loading models (no weight repacking on AMX machines), contexts of many sequences.

llama.cpp's AMX kernels crash the first matmul on some CPUs and VMs, so on machines that report AMX the
extra buffer types (which repack the weights) are turned off for the duration of a load
(:func:`default_model_params`); llama-cpp-python has no argument for it.

Example:
    ```python
    from cscprog.lm.local.llama import import_llama, llama_available

    if llama_available():
        llama_cpp = import_llama()
    ```
"""

from __future__ import annotations

import contextlib
import importlib.util
import threading
from typing import Any

from cscprog.errors import ConfigError

__all__ = [
    "LLAMA_MISSING",
    "cpu_has_amx",
    "default_context_params",
    "default_model_params",
    "import_llama",
    "llama_available",
]

LLAMA_MISSING = (
    'model = "local" needs the extra: pip install "cscprog[local]" '
    "(the first install compiles llama.cpp, about 10 minutes)"
)


def import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError as error:
        raise ConfigError(LLAMA_MISSING) from error
    return llama_cpp


def llama_available() -> bool:
    """True when llama-cpp-python is installed (without importing it).

    Example:
        ```python
        if not llama_available():
            print('pip install "cscprog[local]"')
        ```
    """
    return importlib.util.find_spec("llama_cpp") is not None


def cpu_has_amx(llama_cpp: Any) -> bool:
    """True when llama.cpp was built with, and runs on, Intel AMX."""
    return "AMX_INT8 = 1" in llama_cpp.llama_print_system_info().decode("utf-8", "replace")


_PARAMS_LOCK = threading.RLock()


@contextlib.contextmanager
def _patched_defaults(llama_cpp: Any, function: str, fields: dict[str, Any]) -> Any:
    """Make llama.cpp's defaults function ``function`` return its params with ``fields`` set, for one load.

    Fields this llama.cpp build does not have are left out; with none left the function is not patched.
    """
    module = llama_cpp.llama_cpp
    original = getattr(module, function)
    known = {name for name, _ in getattr(type(original()), "_fields_", ())}
    wanted = {name: value for name, value in fields.items() if name in known}
    if not wanted:
        yield
        return

    def defaults() -> Any:
        params = original()
        for name, value in wanted.items():
            setattr(params, name, value)
        return params

    with _PARAMS_LOCK:
        setattr(module, function, defaults)
        try:
            yield
        finally:
            setattr(module, function, original)


@contextlib.contextmanager
def default_model_params(llama_cpp: Any, *, use_extra_bufts: bool) -> Any:
    """Load models with llama.cpp's ``use_extra_bufts`` set as given.

    llama-cpp-python 0.3 has no argument for it, so the defaults function it reads is wrapped for the
    duration of one load. Extra buffer types repack the weights (AMX, AVX2/NEON layouts); the AMX one
    crashes the first matmul on some machines and VMs (ggml-org/llama.cpp#20824: a GP fault on ``ldtilecfg``,
    reproduced on the project's 2-core development VM), so it is turned off whenever the CPU reports AMX.
    """
    fields = {} if use_extra_bufts else {"use_extra_bufts": False}
    with _patched_defaults(llama_cpp, "llama_model_default_params", fields):
        yield


@contextlib.contextmanager
def default_context_params(llama_cpp: Any, *, sequences: int) -> Any:
    """Create contexts that hold ``sequences`` parallel sequences, each in its own KV cache stream.

    llama-cpp-python 0.3 has no argument for ``n_seq_max`` or ``kv_unified``. Separate streams
    (``kv_unified = False``) give every sequence the same cells it would have alone, so a sequence's attention
    does not depend on what else is decoded beside it; each stream holds ``n_ctx / sequences`` tokens.

    Example:
        ```python
        with default_context_params(llama_cpp, sequences=4):
            llama = llama_cpp.Llama(model_path=path, n_ctx=4 * 4096)
        ```
    """
    with _patched_defaults(llama_cpp, "llama_context_default_params", {"n_seq_max": sequences, "kv_unified": False}):
        yield
