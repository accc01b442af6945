"""Self-describing checkpoints: plain tensors and JSON-able config, never pickled code.

A checkpoint is a dict::

    format_version  int      FORMAT_VERSION
    family          str      "vae" | ...
    model_config    dict     the family's config dataclass as a dict
    train_config    dict     TrainConfig as a dict
    state_dict      dict     weights
    step, epoch     int      progress when written (epoch = completed epochs)
    metrics         dict     optional: last validation metrics
    resume          dict     optional, run checkpoints only: optimizer and RNG states
    parts           list     optional: a snapshot of part of the model, by state-dict prefix
                             (a GAN's generator); the rest keeps its initial weights
    weights_dtype   str      optional: "float16" when the weights were stored at half precision

It is written to a temporary file and renamed, so a reader never sees a torn file, and read
with ``torch.load(weights_only=True)``, so a checkpoint can never run code. A checkpoint is data
that anyone may have written (an upload on a class server): before anything is allocated its
archive, its description and its config are checked against limits the operator can set
(``GENAPP_MAX_CHECKPOINT_MB``, ``GENAPP_MAX_PARAMETERS``), so a refused file costs the server
little memory and little time.
"""
from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import _weights_only_unpickler  # torch.load(weights_only=True)'s own unpickler

from genapp import schema
from genapp.config import ConfigError, from_dict, to_dict
from genapp.files import atomic_write
from genapp.models import GenerativeModel, get_family

FORMAT_VERSION = 1
MAX_MB_ENV = "GENAPP_MAX_CHECKPOINT_MB"  # the largest checkpoint file this server opens, in MB
DEFAULT_MAX_MB = 160  # a default MLP flow run's best.pt (27.7M float32 weights) is 106 MB
MAX_PARAMETERS_ENV = "GENAPP_MAX_PARAMETERS"  # the largest model (numbers in its tensors) it builds
DEFAULT_MAX_PARAMETERS = 40_000_000
MAX_PICKLE_BYTES = 16 * 2**20  # a checkpoint's description (its pickle) is a few kilobytes
MAX_RECORDS = 10_000


class CheckpointError(RuntimeError):
    """A file is not a usable genapp checkpoint; the message says why, for a user."""


def save_checkpoint(
    path: str | Path,
    model: GenerativeModel,
    *,
    train_config: Any = None,
    step: int = 0,
    epoch: int = 0,
    metrics: dict | None = None,
    resume: dict | None = None,
    parts: list[str] | None = None,
    half: bool = False,
) -> None:
    """Write ``model`` (weights moved to the CPU) and its description to ``path``, atomically:
    only the weights under the state-dict prefixes ``parts`` when given, at float16 with ``half``."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()
             if parts is None or any(k.startswith(p) for p in parts)}
    payload = {
        "format_version": FORMAT_VERSION,
        "family": model.name,
        "model_config": to_dict(model.config),
        "train_config": to_dict(train_config) if train_config is not None else {},
        "state_dict": _half(state) if half else state,
        "step": int(step),
        "epoch": int(epoch),
        "metrics": dict(metrics or {}),
    }
    if resume is not None:
        payload["resume"] = resume
    if parts is not None:
        payload["parts"] = list(parts)
    if half:
        payload["weights_dtype"] = "float16"
    atomic_write(Path(path), lambda f: torch.save(payload, f))


def _half(state_dict: dict) -> dict:
    return {k: v.half() if v.is_floating_point() else v for k, v in state_dict.items()}


def write_half_precision(source: str | Path, target: str | Path) -> None:
    """Copy a checkpoint with its floating-point weights stored as float16 (half the bytes).

    Loading upcasts them into the float32 model, so the figures measured on ``target`` are those
    of the weights as shipped.
    """
    payload = read_checkpoint(source)
    payload["state_dict"] = _half(payload["state_dict"])
    payload["weights_dtype"] = "float16"
    atomic_write(Path(target), lambda f: torch.save(payload, f))


def limits() -> tuple[int, int]:
    """(bytes, tensor elements): the largest checkpoint this process opens, from
    ``GENAPP_MAX_CHECKPOINT_MB`` and ``GENAPP_MAX_PARAMETERS`` (else the defaults)."""
    values = []
    for name, default, unit in ((MAX_MB_ENV, DEFAULT_MAX_MB, 2**20), (MAX_PARAMETERS_ENV, DEFAULT_MAX_PARAMETERS, 1)):
        raw = os.environ.get(name, "").strip()
        try:
            value = int(raw) if raw else default
        except ValueError:
            value = 0
        if value <= 0:
            raise CheckpointError(f"{name}={raw!r}: expected a positive whole number")
        values.append(value * unit)
    return values[0], values[1]


def check_archive(file: BinaryIO, path: Path, max_bytes: int) -> dict[str, zipfile.ZipInfo]:
    """The records of an open checkpoint file, by name, once it passes: torch's zip format, every
    record stored uncompressed (a deflated record could expand a few megabytes into gigabytes;
    torch never compresses its records), at most ``max_bytes`` in all."""
    size = os.fstat(file.fileno()).st_size
    if size > max_bytes:
        raise CheckpointError(f"{path}: {size / 2**20:,.0f} MB; this server opens checkpoints of at most "
                              f"{max_bytes / 2**20:,.0f} MB ({MAX_MB_ENV})")
    try:
        records = zipfile.ZipFile(file).infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint (corrupt or truncated, or no torch file: {e})") from None
    compressed = [r.filename for r in records if r.compress_type != zipfile.ZIP_STORED]
    if compressed:
        raise CheckpointError(f"{path}: refused: {len(compressed)} compressed record(s) ({compressed[0][:80]}); "
                              "torch stores tensors uncompressed, so this is no checkpoint genapp made")
    total = sum(r.file_size for r in records)
    if total > max_bytes or len(records) > MAX_RECORDS:
        raise CheckpointError(f"{path}: its {len(records):,} records hold {total / 2**20:,.0f} MB; this server opens "
                              f"checkpoints of at most {max_bytes / 2**20:,.0f} MB ({MAX_MB_ENV})")
    return {r.filename: r for r in records}


def _skeleton(file: BinaryIO, path: Path, records: dict[str, zipfile.ZipInfo]) -> tuple[Any, int]:
    """The checkpoint's pickle unpickled with every tensor on the meta device (shapes and dtypes,
    no data: nothing allocated), by torch's weights-only unpickler; and the bytes its storages
    declare, each checked against the size of its record."""
    pickles = [name for name in records if name.endswith("/data.pkl")]
    if len(pickles) != 1 or records[pickles[0]].file_size > MAX_PICKLE_BYTES:
        raise CheckpointError(f"{path}: not a genapp checkpoint (its description is missing or oversized)")
    folder = pickles[0][: -len("data.pkl")]
    declared = 0

    def meta_storage(saved_id):
        nonlocal declared
        _, storage_type, key, _, numel = saved_id
        dtype = torch.uint8 if storage_type is torch.UntypedStorage else storage_type.dtype
        nbytes = int(numel) * torch._utils._element_size(dtype)
        record = records.get(f"{folder}data/{key}")
        if record is None or record.file_size != nbytes:
            raise CheckpointError(f"{path}: not a readable checkpoint (a tensor's data does not match its record)")
        declared += nbytes
        return torch.storage.TypedStorage(wrap_storage=torch.UntypedStorage(nbytes, device="meta"), dtype=dtype,
                                          _internal=True)

    try:
        with zipfile.ZipFile(file) as archive:
            data = archive.read(pickles[0])
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:  # the fuzzer found these
        raise CheckpointError(f"{path}: not a readable checkpoint (corrupt or truncated: {e})") from None
    unpickler = _weights_only_unpickler.Unpickler(io.BytesIO(data), encoding="utf-8")
    unpickler.persistent_load = meta_storage
    try:
        skeleton = unpickler.load()
    except CheckpointError:
        raise
    except pickle.UnpicklingError as e:
        # weights_only refuses anything that would construct arbitrary objects or run code.
        detail = str(e)
        if "GLOBAL" not in detail and "global" not in detail:
            raise CheckpointError(f"{path}: not a readable checkpoint (corrupt or not a torch file)") from None
        culprit = next((line.strip() for line in detail.splitlines() if "GLOBAL" in line or "global" in line), "")
        raise CheckpointError(
            f"{path}: refused: the file holds objects other than tensors and plain data, which could "
            f"run code when loaded; only genapp checkpoints can be opened ({culprit[:200]})"
        ) from None
    except Exception as e:  # the unpickler raises many types on corrupt bytes
        raise CheckpointError(f"{path}: not a readable checkpoint (corrupt or truncated): {str(e)[:300]}") from None
    return skeleton, declared


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    return path


def _described(file: BinaryIO, path: Path, max_bytes: int) -> tuple[Any, int]:
    """``_skeleton`` of an open checkpoint whose archive passes ``check_archive``."""
    records = check_archive(file, path, max_bytes)
    file.seek(0)
    return _skeleton(file, path, records)


def read_checkpoint(path: str | Path, family: str | None = None) -> dict:
    """Load and check a checkpoint dict; ``family`` (if given) must match.

    Everything is checked before any tensor is read: the archive (``check_archive``), then the
    description, unpickled with tensors on the meta device (its fields by ``genapp.schema``, the
    model config by the family's rules, the model's size counted from the config, every weight's
    shape against the model built on the meta device, the bytes its storages declare). Only then
    are the tensors read, from the same open file, and their values checked (finite weights).
    """
    path = _existing(path)
    max_bytes, max_elements = limits()
    with open(path, "rb") as file:
        skeleton, declared = _described(file, path, max_bytes)
        header = _checked_header(skeleton, path, family)
        elements = _check_model(skeleton, header, str(path), max_elements)
        # last.pt adds the optimizer's two moments per weight and a few small states
        if declared > 4 * 4 * elements + 16 * 2**20:
            raise CheckpointError(f"{path}: its tensors hold {declared / 2**20:,.0f} MB, more than its model needs")
        file.seek(0)
        try:
            payload = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as e:  # the file changed under us, or torch refuses what the checks let by
            raise CheckpointError(f"{path}: not a readable checkpoint (corrupt or truncated): {str(e)[:300]}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("state_dict"), dict):
        raise CheckpointError(f"{path}: not a genapp checkpoint")
    for key, tensor in payload["state_dict"].items():
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"{path}: not a genapp checkpoint (the weights {str(key)[:60]} are no tensor)")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{path}: refused: the weights {key} are not all finite (NaN or infinity)")
    return {**payload, **header}


def _checked_header(skeleton: Any, path: Path, family: str | None) -> dict:
    try:
        header = schema.checkpoint_header(skeleton, FORMAT_VERSION)
        for key, value in skeleton["state_dict"].items():
            if not isinstance(key, str) or not isinstance(value, torch.Tensor):
                raise schema.Invalid(f"state_dict must map names to tensors; {str(key)[:60]!r} holds "
                                     f"{type(value).__name__}")
    except schema.Invalid as e:
        raise CheckpointError(f"{path}: {e}") from None
    if family is not None and header["family"] != family:
        raise CheckpointError(f"{path}: a {header['family'][:40]} checkpoint, expected a {family} one")
    return header


def _check_model(skeleton: dict, header: dict, source: str, max_elements: int) -> int:
    """Refuse a checkpoint whose model does not fit: a config outside the family's rules, a model
    of more than ``max_elements`` numbers (counted from the config alone), weights of other names,
    shapes or kinds than the model, built on the meta device (which allocates nothing), has.
    Returns the model's number of elements."""
    try:
        cls = get_family(header["family"])
        config = from_dict(cls.Config, header["model_config"])
    except ConfigError as e:
        raise CheckpointError(f"{source}: checkpoint does not match its model: {e}") from None
    elements = cls.tensor_elements(config)
    if elements > max_elements:
        raise CheckpointError(f"{source}: its config asks for a model of {elements:,} numbers; this server builds "
                              f"at most {max_elements:,} ({MAX_PARAMETERS_ENV})")
    with torch.device("meta"):
        expected = cls(config).state_dict()
    problems = _state_problems(skeleton["state_dict"], expected, header["parts"])
    if problems:
        raise CheckpointError(f"{source}: checkpoint does not match its model: {'; '.join(problems[:3])}"
                              + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""))
    return elements


def read_header(path: str | Path) -> dict:
    """A checkpoint's checked description (family, model_config, train_config, epoch, step, metrics,
    parts), reading only its archive's directory and its pickle: no tensor is loaded. Raises
    ``CheckpointError``."""
    path = _existing(path)
    max_bytes, _ = limits()
    with open(path, "rb") as file:
        skeleton, _ = _described(file, path, max_bytes)
    header = _checked_header(skeleton, path, None)
    return {k: header[k] for k in ("family", "model_config", "train_config", "epoch", "step", "metrics", "parts")}


def model_from_checkpoint(payload: dict, source: str = "checkpoint") -> GenerativeModel:
    """The model a checkpoint (as ``read_checkpoint`` returns it, checked) describes, with its
    weights. A snapshot of ``parts`` of a model loads those parts only, and the model says so
    (``model.parts``)."""
    parts = payload.get("parts")
    try:
        cls = get_family(payload["family"])
        model = cls(from_dict(cls.Config, payload["model_config"]))
        model.load_state_dict(payload["state_dict"], strict=parts is None)
    except (ConfigError, RuntimeError, TypeError, KeyError) as e:
        raise CheckpointError(f"{source}: checkpoint does not match its model: {str(e)[:300]}") from None
    model.parts = tuple(parts) if parts is not None else None
    return model


def _state_problems(state: dict, expected: dict, parts: list[str] | None) -> list[str]:
    """What keeps ``state`` from loading into a model whose state dict is ``expected`` (meta
    tensors): missing or unknown names, other shapes, other kinds of number."""
    def wanted(key: str) -> bool:
        return parts is None or any(key.startswith(p) for p in parts)

    problems = [f"missing {k}" for k in expected if wanted(k) and k not in state]
    problems += [f"unexpected {k[:80]}" for k in state if k not in expected or not wanted(k)]
    for key, tensor in state.items():
        if key not in expected:
            continue
        model_tensor = expected[key]
        if tuple(tensor.shape) != tuple(model_tensor.shape):
            problems.append(f"{key} has shape {tuple(tensor.shape)}, the model {tuple(model_tensor.shape)}")
        elif tensor.is_floating_point() != model_tensor.is_floating_point() or (
                not tensor.is_floating_point() and tensor.dtype != model_tensor.dtype):
            problems.append(f"{key} holds {tensor.dtype}, the model {model_tensor.dtype}")
    return problems


def load_model(path: str | Path, family: str | None = None, device: str | torch.device = "cpu") -> GenerativeModel:
    """Any saved model, ready to use: on ``device`` (the CPU by default), in eval mode.

    The checkpoint's own description rebuilds the architecture; the caller need not know it.
    Raises ``CheckpointError`` with a readable message for anything that is not a valid
    checkpoint (of ``family``, when given).
    """
    payload = read_checkpoint(path, family)
    model = model_from_checkpoint(payload, str(path))
    model.checkpoint_info = {k: payload.get(k) for k in ("step", "epoch", "metrics", "train_config")}
    return model.to(device).eval()
