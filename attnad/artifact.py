"""The model directory: `model.safetensors` (weights) + `attnad.json` (everything else).

Loading never executes code from the directory: weights are read with safetensors, the rest is
JSON. The JSON records a SHA-256 of the weights file, so a tampered or truncated directory is
refused, and a format version, so a model from an incompatible attnad is refused with a message
saying what to do. The directory is written beside the target and renamed into place (swapped
atomically with an existing model on Linux).

    write_artifact(path, meta, state_dict); meta, tensors = read_artifact(path)
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from attnad import __version__
from attnad.data.io import default_mode
from attnad.errors import ModelError, UserError

FORMAT = "attnad-model"
FORMAT_VERSION = 2  # 2: adds the training profile ("profile", attnad.data.profile)
READABLE_VERSIONS = (1, 2)  # an older model loads; it only lacks what later versions added
WEIGHTS = "model.safetensors"
META = "attnad.json"
MAX_META_BYTES = 256 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_model_target(path: str | Path, option: str = "-o") -> None:
    """Refuse, before training starts, a model path that could not be written or would destroy
    something that is not an attnad model."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise UserError(f"{option} {target}: exists and is not a directory; choose another path")
    if target.is_dir():
        other = sorted(p.name for p in target.iterdir() if p.name not in (META, WEIGHTS))
        if other and not (target / META).exists():
            raise UserError(f"{option} {target}: directory is not empty and is not an attnad "
                            "model; refusing to overwrite it")
        if other:  # replacing the model directory whole would delete them
            raise UserError(f"{option} {target}: the model directory also holds "
                            f"{', '.join(other[:3])}{' ...' if len(other) > 3 else ''}; move them "
                            "out or choose another path")
    parent = target.parent if str(target.parent) else Path(".")
    while not parent.exists() and parent != parent.parent:  # mkdir -p will create the rest
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UserError(f"{option} {target}: cannot create it in {parent} (not a writable directory)")


def write_artifact(path: str | Path, meta: dict, state_dict: dict[str, torch.Tensor]) -> None:
    target = Path(path)
    check_model_target(target)
    parent = target.parent if str(target.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
    try:
        os.chmod(tmp, default_mode(directory=True))
        tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
        save_file(tensors, str(tmp / WEIGHTS))
        with open(tmp / WEIGHTS, "rb+") as fh:
            os.fsync(fh.fileno())
        full = dict(meta)
        full.update({
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "attnad_version": __version__,
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "weights_sha256": sha256_file(tmp / WEIGHTS),
        })
        with open(tmp / META, "w", encoding="utf-8") as fh:
            json.dump(full, fh, indent=1, allow_nan=False)
            fh.flush()
            os.fsync(fh.fileno())
        _swap_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directory entries in one atomic step (Linux renameat2 RENAME_EXCHANGE); False
    where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Put the finished directory at the target. An existing model is swapped out in one atomic
    step where the system allows it (a reader, or a kill -9, sees the old model or the new one),
    else renamed aside first; the old one is removed only afterwards."""
    if target.exists() and _exchange(tmp, target):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old model
    elif target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        os.rmdir(old)
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


def read_artifact(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    root = Path(path)
    if not root.is_dir():
        raise ModelError(f"{root}: model directory not found (train one with `attnad train`)")
    meta_path, weights_path = root / META, root / WEIGHTS
    for p in (meta_path, weights_path):
        if not p.is_file():
            raise ModelError(f"{root}: not an attnad model directory ({p.name} is missing)")
    if meta_path.stat().st_size > MAX_META_BYTES:
        raise ModelError(f"{meta_path}: too large to be an attnad model description")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ModelError(f"{meta_path}: not valid JSON ({e}); the model directory is damaged") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelError(f"{meta_path}: not an attnad model description")
    version = meta.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ModelError(
            f"{root}: model format version {version} is not supported by attnad {__version__} "
            f"(which reads versions {', '.join(map(str, READABLE_VERSIONS))}); retrain the model with this attnad or use "
            f"the attnad version that wrote it ({meta.get('attnad_version', 'unknown')})")
    if sha256_file(weights_path) != meta.get("weights_sha256"):
        raise ModelError(f"{weights_path}: checksum does not match attnad.json; the model directory "
                         "was modified or damaged, retrain or restore it")
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelError(f"{weights_path}: cannot read weights: {e}") from None
    return meta, tensors
