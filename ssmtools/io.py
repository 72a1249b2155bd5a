"""Reading and writing checkpoints: safetensors, torch state dicts, ``.npz``, flax msgpack; ``load``/``save``.

- ``.safetensors``: flat ``{name: array}`` (via ``safetensors.numpy``; complex supported from 0.6).
- ``.pt`` / ``.pth`` / ``.bin``: a torch state dict (or a dict holding one), read with
  ``torch.load(..., weights_only=True)`` on the CPU: no code from the file is executed.
- ``.npz``: ``numpy.load(..., allow_pickle=False)``.
- ``.msgpack`` / ``.flax``: ``flax.serialization.to_bytes`` output — msgpack with ndarrays as
  extension type 1 ``(shape, dtype name, C-order bytes)``, Python complex as type 2, numpy scalars
  as type 3, arrays over 1 GiB split into ``__msgpack_chunked_array__`` dicts — read and written
  with the ``msgpack`` package alone (no jax/flax).

Writes are atomic (a temporary file in the target's directory, then ``os.replace``) and never
overwrite the file a model was read from.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Literal, cast

import numpy as np

from . import adapters
from .adapters import flatten
from .errors import ArgumentError, FormatError, SSMToolsError, missing_dependency
from .model import SSMModel

Format = Literal["safetensors", "torch", "npz", "msgpack"]
FORMATS: tuple[str, ...] = ("safetensors", "torch", "npz", "msgpack")
EXTENSIONS: dict[str, str] = {
    ".safetensors": "safetensors",
    ".pt": "torch",
    ".pth": "torch",
    ".bin": "torch",
    ".npz": "npz",
    ".msgpack": "msgpack",
    ".flax": "msgpack",
}
_CHUNKED = "__msgpack_chunked_array__"
_MAX_CHUNK_BYTES = 2**30


class OverwriteError(SSMToolsError, ValueError):
    """Refused to write over an input (the checkpoint a model was read from) or over another output of the same command."""


class OutputError(SSMToolsError, OSError):
    """An output could not be written (full disk, quota, I/O error); nothing of the commit was left in place."""


class InputFileError(SSMToolsError, OSError):
    """An input path is not a readable regular file (missing, a directory, a FIFO or device, permission denied)."""


class MissingInputError(InputFileError, FileNotFoundError):
    """An input path does not exist."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived during an atomic write: the temporaries were removed, no destination was changed."""


_UNSAFE_ADVICE = ("allow_pickle", "weights_only", "pickle", "unpickl")

MEMORY_BUDGET = 2 * 2**30
"""Default budget, in bytes, for the arrays a checkpoint declares (2 GiB). Override it with the
``SSMTOOLS_MEMORY_BUDGET`` environment variable (bytes, or with a K/M/G/T suffix: ``8G``), the CLI's
``--memory-budget``, or ``memory_budget=`` of :func:`read_params` (docs/concepts/file-safety.md#memory-budget)."""


class MemoryBudgetError(SSMToolsError, ValueError):
    """A checkpoint declares more array data than the memory budget allows (checked before anything is allocated)."""


def memory_budget(value: int | str | None = None) -> int:
    """The memory budget in bytes: ``value`` if given, else ``SSMTOOLS_MEMORY_BUDGET``, else :data:`MEMORY_BUDGET`.

    Parameters
    ----------
    value : int or str, optional
        Bytes, or a string such as ``"512M"``, ``"8G"`` (powers of 1024).

    Returns
    -------
    int
        The budget in bytes (> 0).
    """
    raw = value if value is not None else os.environ.get("SSMTOOLS_MEMORY_BUDGET")
    if raw is None:
        return MEMORY_BUDGET
    if isinstance(raw, str):
        text = raw.strip().upper().removesuffix("B").removesuffix("I")
        scale = 1024 ** ("KMGT".index(text[-1]) + 1) if text[-1:] in ("K", "M", "G", "T") else 1
        number = text[:-1] if scale > 1 else text
        try:
            budget = int(float(number) * scale)
        except ValueError:
            raise ArgumentError(
                f"memory budget {raw!r} is not a size; write bytes or a number with K, M, G or T (e.g. 8G)"
            ) from None
    elif isinstance(raw, bool) or not isinstance(raw, int):
        raise ArgumentError(f"memory budget {raw!r} must be a number of bytes or a size such as '8G'")
    else:
        budget = raw
    if budget <= 0:
        raise ArgumentError(f"memory budget {raw!r} must be positive")
    return budget


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def declared_bytes(path: str | os.PathLike, fmt: str) -> int:
    """The bytes of array data a checkpoint file declares, read from its headers without loading the arrays.

    safetensors: the JSON header's data offsets (a header larger than the file, or offsets past its end, are a
    FormatError). ``.npz`` and torch zip files: the members' uncompressed sizes from the zip directory (so a
    compressed file that would expand far beyond its size is caught). msgpack and legacy torch files: the file size.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file.
    fmt : {"safetensors", "torch", "npz", "msgpack"}
        Its format.

    Returns
    -------
    int
        Declared bytes.
    """
    path = os.fspath(path)
    size = os.path.getsize(path)
    if fmt == "safetensors":
        with open(path, "rb") as file:
            head = file.read(8)
            if len(head) < 8:
                raise FormatError(f"{path}: too short to be a safetensors file ({size} bytes)")
            length = int.from_bytes(head, "little")
            if length > size - 8:
                raise FormatError(f"{path}: its header declares {length} bytes but the file has {size}; truncated?")
            try:
                header = json.loads(file.read(length))
            except (ValueError, UnicodeDecodeError) as exc:
                raise FormatError(f"{path}: the safetensors header is not valid JSON ({exc})") from None
        ends = [
            entry["data_offsets"][1]
            for key, entry in (header.items() if isinstance(header, dict) else [])
            if key != "__metadata__" and isinstance(entry, dict) and len(entry.get("data_offsets", ())) == 2
        ]
        total = max([0, *(int(end) for end in ends)])
        if total > size - 8 - length:
            raise FormatError(
                f"{path}: the header declares {total} bytes of tensor data but the file holds {size - 8 - length}; "
                "truncated or corrupt"
            )
        return total
    if fmt in ("npz", "torch") and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return sum(info.file_size for info in archive.infolist())
    return size


def check_memory_budget(path: str | os.PathLike, fmt: str, budget: int | str | None = None) -> None:
    """Refuse a checkpoint whose declared array data (:func:`declared_bytes`) exceeds the memory budget.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file.
    fmt : {"safetensors", "torch", "npz", "msgpack"}
        Its format.
    budget : int or str, optional
        See :func:`memory_budget`.

    Raises
    ------
    MemoryBudgetError
        Naming the file, the declared and the allowed sizes, and how to raise the budget.
    """
    allowed = memory_budget(budget)
    declared = declared_bytes(path, fmt)
    if declared > allowed:
        raise MemoryBudgetError(
            f"{os.fspath(path)}: declares {_size(declared)} of array data ({_size(os.path.getsize(path))} on disk), "
            f"more than the memory budget of {_size(allowed)}; nothing was loaded. If the file is trusted, raise the "
            "budget with SSMTOOLS_MEMORY_BUDGET=16G or --memory-budget 16G"
        )


# ---------------------------------------------------------------------------------------------- public API
def load(source: Any, family: str | adapters.Adapter = "auto", **config: Any) -> SSMModel:
    """Read a checkpoint of a registered model family (S5, S4D, LRU, ...) into an [`SSMModel`][ssmtools.model.SSMModel].

    Parameters
    ----------
    source : str, os.PathLike, Mapping or torch.nn.Module
        A file (``.safetensors``, ``.pt``/``.pth``/``.bin``, ``.npz``, ``.msgpack``/``.flax``), an
        in-memory state dict / nested parameter tree of arrays, or a module (its ``state_dict()``).
    family : str or ssmtools.adapters.Adapter
        ``"auto"`` (default) detects the family from the parameter names (each adapter's
        ``detection_keys``); ambiguous or unknown trees raise [`FormatError`][ssmtools.errors.FormatError]
        listing what was found. Otherwise a name of [`ssmtools.adapters.available_families`][ssmtools.adapters.available_families]
        (shipped: ``"s5"``, ``"s5-pytorch"``, ``"s4d"``, ``"s4d-full"``, ``"lru"``), or an adapter instance.
    **config
        Settings not stored in the weights: the family's ``get_adapter(family).defaults``; unknown names
        raise TypeError listing the valid ones. S5 (flax): ``conj_sym=True``, ``discretization="zoh"``
        (or ``"bilinear"``), ``step_rescale=1.0``, ``clip_eigs=False``, ``bidirectional=None``
        (inferred). s5-pytorch: ``step_scale=1.0``, ``discretization="zoh"``, ``bidirectional=None``.
        s4d-full: ``discretization="zoh"``, ``dt_transform="exp"``, ``real_transform="exp"``,
        ``imag_transform="none"``. LRU: ``transposed=None`` (inferred from the shapes unless N = H).

    Returns
    -------
    SSMModel
        One [`SSMLayer`][ssmtools.model.SSMLayer] per SSM layer, named by its path in the tree, each a
        discrete-time ``DiagonalSSM`` (``state_includes_input=True``, ``output="real"``) in the
        family's exact convention (docs/concepts/conventions.md); ``model.adapter`` is the family's adapter.

    Examples
    --------
    >>> import numpy as np, ssmtools
    >>> params = {"nu_log": np.zeros(2), "theta_log": np.zeros(2), "B_re": np.ones((2, 3)),
    ...           "B_im": np.zeros((2, 3)), "C_re": np.ones((3, 2)), "C_im": np.zeros((3, 2))}
    >>> model = ssmtools.load(params)
    >>> model.family, list(model), model[""].system.poles.shape
    ('lru', [''], (2,))
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        params, _ = read_params(path)
        return adapters.read(params, family, source=path, **config)
    if not isinstance(source, Mapping) and callable(getattr(source, "state_dict", None)):
        source = source.state_dict()
    return adapters.read(source, family, **config)


def save(model: SSMModel, path: str | os.PathLike, *, format: Format | None = None) -> Path:
    """Write ``model.params`` to ``path`` atomically, refusing to overwrite ``model.source``.

    Parameters
    ----------
    model : SSMModel
        Typically the result of ``load(...).apply(keep)`` or ``.replace_systems(...)``.
    path : str or os.PathLike
        Target file; its directory must exist.
    format : {"safetensors", "torch", "npz", "msgpack"}, optional
        Default: from the extension of ``path``, else the format of ``model.source``.

    Returns
    -------
    Path
        The written file.
    """
    if model.params is None:
        raise ArgumentError("this model has no parameters to save (family='custom'); load a checkpoint first")
    target = Path(os.fspath(path))
    fmt = format or output_format(target, source=model.source)
    if model.source is not None and _same_file(target, Path(model.source)):
        raise OverwriteError(
            f"refusing to overwrite the input checkpoint {model.source!r}; write the pruned/reduced weights to a "
            "new file"
        )
    write_params(model.params, target, fmt)
    return target


def output_format(path: str | os.PathLike, *, source: str | os.PathLike | None = None) -> Format:
    """The checkpoint format of an output: from its extension, else the source's.

    Parameters
    ----------
    path : str or os.PathLike
        The output path.
    source : str or os.PathLike, optional
        The checkpoint it was derived from.

    Returns
    -------
    {"safetensors", "torch", "npz", "msgpack"}

    Raises
    ------
    FormatError
        When neither extension names a format.
    """
    target = Path(os.fspath(path))
    fmt = EXTENSIONS.get(target.suffix.lower())
    if fmt is None and source is not None:
        fmt = EXTENSIONS.get(Path(os.fspath(source)).suffix.lower())
    if fmt is None or fmt not in FORMATS:
        raise FormatError(
            f"cannot tell the format of {str(target)!r} (extension {target.suffix!r}); pass format= one of "
            f"{list(FORMATS)} or use one of the extensions {sorted(EXTENSIONS)}"
        )
    return cast(Format, fmt)


def check_output_paths(outputs: Mapping[str, str | os.PathLike], inputs: Mapping[str, str | os.PathLike]) -> None:
    """Refuse, before anything is written, outputs that would destroy an input or each other.

    Every output must differ from every input and from every other output by resolved identity (symlinks,
    hard links and ``./..`` spellings compare equal), must not name a directory (``-o dir/`` included), and
    must not be an existing non-regular file (a FIFO, a device, ``/proc/self/fd/N``), which a replace would
    turn into a regular file.

    Parameters
    ----------
    outputs : Mapping[str, path]
        What each output is (e.g. ``"--output"``, ``"--plan-json"``) -> its path.
    inputs : Mapping[str, path]
        What each input is -> its path.

    Raises
    ------
    OverwriteError
        Naming both arguments and the path.
    """
    seen: list[tuple[str, Path]] = [(label, Path(os.fspath(path))) for label, path in inputs.items()]
    for label, raw in outputs.items():
        text = os.fspath(raw)
        path = Path(text)
        if text.endswith(os.sep) or path.is_dir():
            raise OverwriteError(f"{label} {text!r} is a directory; name the file to write, e.g. {label} model.pt")
        if path.exists() and not path.is_file():
            raise OverwriteError(f"{label} {text!r} exists and is not a regular file; choose another path")
        for other_label, other in seen:
            if _same_file(path, other):
                raise OverwriteError(
                    f"{label} {text!r} is the same file as {other_label} {os.fspath(other)!r}: refusing to overwrite "
                    "it; every output must be a new, distinct file (nothing was written)"
                )
        seen.append((label, path))


def _same_file(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:  # pragma: no cover
        return False


# ---------------------------------------------------------------------------------------------- reading
def read_params(path: str | os.PathLike, *, memory_budget: int | str | None = None) -> tuple[Any, str]:
    """``(parameter tree, format)`` of a checkpoint file; FormatError naming the file when unreadable.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.safetensors``, ``.pt``/``.pth``, ``.npz`` or ``.msgpack`` file.
    memory_budget : int or str, optional
        The most array data the file may declare (:func:`check_memory_budget`); default :func:`memory_budget`.

    Returns
    -------
    params : Mapping
        The parameter tree (state dict or nested dict).
    fmt : str
        The format, from the extension.
    """
    path = os.fspath(path)
    fmt = EXTENSIONS.get(Path(path).suffix.lower())
    if fmt is None:
        raise FormatError(
            f"{path}: unknown checkpoint extension {Path(path).suffix!r}; supported: {sorted(EXTENSIONS)}"
        )
    check_input_file(path)
    check_memory_budget(path, fmt, memory_budget)
    reader = {"safetensors": _read_safetensors, "torch": _read_torch, "npz": _read_npz, "msgpack": _read_msgpack}[fmt]
    try:
        params = reader(path)
    except (FormatError, ImportError):
        raise
    except PermissionError as exc:
        raise InputFileError(f"{path}: permission denied ({exc.strerror}); make the file readable") from exc
    except Exception as exc:
        if any(word in str(exc).lower() for word in _UNSAFE_ADVICE):
            raise FormatError(
                f"{path}: holds pickled Python objects, not only arrays; ssmtools never unpickles a checkpoint (that "
                "could run code from the file). Save the weights alone: torch.save(model.state_dict(), ...) with "
                "tensors only, numpy arrays of numbers, or .safetensors"
            ) from None
        raise FormatError(
            f"{path}: could not be read as a {fmt} checkpoint ({type(exc).__name__}: {exc}); is the file complete "
            "and of the type its extension says?"
        ) from exc
    if not isinstance(params, Mapping):
        raise FormatError(f"{path}: holds a {type(params).__name__}, not a state dict / parameter tree")
    return params, fmt


def check_input_file(path: str | os.PathLike) -> None:
    """Refuse an input that is not a readable regular file, saying what it is instead.

    A missing path, a directory, a FIFO/socket/device (which a reader would block on or misread) and a file the
    user may not read get distinct messages; nothing is opened except to probe readability.

    Parameters
    ----------
    path : str or os.PathLike
        The input path.

    Raises
    ------
    InputFileError
        Naming the path and what it is.
    """
    text = os.fspath(path)
    try:
        mode = os.stat(text).st_mode
    except FileNotFoundError:
        raise MissingInputError(f"{text}: no such checkpoint file") from None
    except PermissionError as exc:
        raise InputFileError(f"{text}: permission denied ({exc.strerror}) on the path; check its directories") from None
    except OSError as exc:
        raise InputFileError(f"{text}: cannot be inspected ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise InputFileError(f"{text}: is a directory, not a checkpoint file; name the file inside it")
    if not stat.S_ISREG(mode):
        raise InputFileError(
            f"{text}: is not a regular file (a FIFO, socket or device); ssmtools reads checkpoint files only"
        )
    try:
        with open(text, "rb"):
            pass
    except PermissionError as exc:
        raise InputFileError(f"{text}: permission denied ({exc.strerror}); make the file readable") from None


def _read_safetensors(path: str) -> dict:
    try:
        from safetensors.numpy import load_file
    except ImportError as exc:  # pragma: no cover - io extra
        raise missing_dependency("safetensors", f"reading {path}") from exc
    return load_file(path)


def _read_torch(path: str) -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch extra
        raise missing_dependency("torch", f"reading {path}") from exc
    return torch.load(path, map_location="cpu", weights_only=True)


def _read_npz(path: str) -> dict:
    with open(path, "rb") as file, np.load(file, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def _read_msgpack(path: str) -> Any:
    msgpack = _msgpack()
    with open(path, "rb") as file:
        data = file.read()
    tree = msgpack.unpackb(data, ext_hook=_ext_unpack, raw=False, strict_map_key=False)
    return _unchunk(tree)


def _msgpack():
    try:
        import msgpack
    except ImportError as exc:  # pragma: no cover - io extra
        raise missing_dependency("msgpack", "reading or writing flax .msgpack checkpoints") from exc
    return msgpack


def _ndarray_from_bytes(data: bytes) -> np.ndarray:
    shape, dtype_name, buffer = _msgpack().unpackb(data, raw=True)
    name = dtype_name.decode() if isinstance(dtype_name, bytes) else dtype_name
    if name == "bfloat16":
        raise FormatError("bfloat16 arrays in a msgpack checkpoint need ml_dtypes/jax; convert to float32 first")
    return np.frombuffer(buffer, dtype=np.dtype(name)).reshape(shape).copy()


def _ext_unpack(code: int, data: bytes) -> Any:
    if code == 1:
        return _ndarray_from_bytes(data)
    if code == 2:
        real, imag = _msgpack().unpackb(data)
        return complex(real, imag)
    if code == 3:
        return _ndarray_from_bytes(data)[()]
    raise FormatError(f"unknown msgpack extension type {code} (not a flax.serialization file?)")


def _unchunk(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get(_CHUNKED):
            shape = tuple(node["shape"][str(i)] for i in range(len(node["shape"])))
            chunks = [node["chunks"][str(i)] for i in range(len(node["chunks"]))]
            return np.concatenate(chunks).reshape(shape)
        return {key: _unchunk(value) for key, value in node.items()}
    return node


# ---------------------------------------------------------------------------------------------- writing
def params_writer(params: Any, fmt: Format) -> Callable[[BinaryIO], None]:
    """The function that writes ``params`` in format ``fmt`` to a binary file (for [`atomic_write_all`][ssmtools.io.atomic_write_all]).

    Parameters
    ----------
    params : Mapping
        The parameter tree.
    fmt : {"safetensors", "torch", "npz", "msgpack"}
        The file format.

    Returns
    -------
    callable
        ``write(file)``.
    """
    writer = {"safetensors": _write_safetensors, "torch": _write_torch, "npz": _write_npz, "msgpack": _write_msgpack}[
        fmt
    ]
    return lambda file: writer(params, file)


def write_params(params: Any, path: str | os.PathLike, fmt: Format) -> None:
    """Write a parameter tree atomically (temporary file in the same directory + ``os.replace``).

    Parameters
    ----------
    params : Mapping
        The parameter tree.
    path : str or os.PathLike
        Destination; its directory must exist.
    fmt : {"safetensors", "torch", "npz", "msgpack"}
        The file format.
    """
    atomic_write(path, params_writer(params, fmt))


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(file)`` on a temporary file in ``path``'s directory, then ``os.replace`` it onto
    ``path``: readers see the old file or the complete new one, never a partial write. On any
    error the temporary file is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file.
    write : callable
        Writes the content to the binary file object it is given.
    """
    atomic_write_all([(path, write)])


def atomic_write_all(items: Sequence[tuple[str | os.PathLike, Callable[[BinaryIO], None]]]) -> None:
    """Write several files as one commit: all of them, or none.

    Every content is first written and synced to a temporary file beside its destination; only when all are
    complete are they moved into place (``os.replace``). If a move fails, the files already moved are rolled
    back (a destination that existed is restored from a hard-link backup, a new one is removed), so a failure
    leaves every destination as it was. New files get the mode the umask gives (as ``open`` would); a replaced
    file keeps its mode. Messages name the destination, never the hidden temporary.

    Parameters
    ----------
    items : sequence of (path, write)
        Destination and the function that writes its content to a binary file.
    """
    staged: list[tuple[Path, str]] = []
    with _terminate_as_exception():
        try:
            for raw, write in items:
                path = Path(os.fspath(raw))
                if not path.parent.is_dir():
                    raise FileNotFoundError(f"{path.parent}: output directory of {str(path)!r} does not exist")
                try:
                    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
                except OSError as exc:
                    raise _output_error(path, exc) from None
                staged.append((path, tmp))
                try:
                    with os.fdopen(fd, "wb") as file:
                        write(file)
                        file.flush()
                        os.fsync(file.fileno())
                    os.chmod(tmp, _mode_for(path))
                except (OSError, RuntimeError) as exc:  # torch.save reports a failed write as RuntimeError
                    raise _output_error(path, exc) from None
        except BaseException:
            for _, tmp in staged:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            raise
        _commit(staged)


def _output_error(path: Path, exc: BaseException) -> OutputError:
    """The failure to write ``path``, naming it (never the temporary) and the cause."""
    cause: BaseException = exc
    while not isinstance(cause, OSError) and isinstance(cause.__context__, BaseException):
        cause = cause.__context__  # torch.save turns the file's OSError into a RuntimeError of its own
    if isinstance(cause, OSError) and cause.strerror:
        reason = cause.strerror
    else:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
    return OutputError(
        f"could not write {str(path)!r} ({reason}); nothing was written: outputs are committed only when all are "
        "complete. Free space or choose another directory"
    )


@contextlib.contextmanager
def _terminate_as_exception() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (so temporaries are removed); the handler is restored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame: Any) -> None:
        raise Terminated("terminated by SIGTERM during a write; its temporary files were removed")

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _mode_for(path: Path) -> int:
    """The mode a new file would get from the umask, or the existing file's mode."""
    if path.exists():
        return path.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _commit(staged: list[tuple[Path, str]]) -> None:
    """Move staged temporaries into place; on failure undo the moves already made."""
    done: list[tuple[Path, str | None]] = []  # destination, backup of its previous content (None: it was new)
    try:
        for path, tmp in staged:
            backup = None
            if path.exists():
                backup = f"{tmp}.bak"
                os.link(path, backup)
            os.replace(tmp, path)
            done.append((path, backup))
    except BaseException:
        for path, backup in reversed(done):
            if backup is None:
                path.unlink(missing_ok=True)
            else:
                os.replace(backup, path)
        for _, tmp in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
            if os.path.exists(f"{tmp}.bak"):
                os.unlink(f"{tmp}.bak")
        raise
    for _, backup in done:
        if backup is not None and os.path.exists(backup):
            os.unlink(backup)


def _numpy_leaf(value: Any, key: str) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            raise FormatError(f"{key!r} is bfloat16, which numpy-based formats cannot hold; save as .pt")
        return value.numpy()
    array = np.asarray(value)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise FormatError(f"{key!r} is not an array ({type(value).__name__}); this format holds arrays only")
    return array


def _flat_arrays(params: Any) -> dict[str, np.ndarray]:
    leaves, _ = flatten(params)
    return {key: np.ascontiguousarray(_numpy_leaf(value, key)) for key, value in leaves.items()}


def _write_safetensors(params: Any, file) -> None:
    try:
        from safetensors.numpy import save
    except ImportError as exc:  # pragma: no cover
        raise missing_dependency("safetensors", "writing .safetensors") from exc
    file.write(save(_flat_arrays(params)))


def _write_npz(params: Any, file) -> None:
    np.savez(file, **_flat_arrays(params))  # type: ignore[arg-type]  # numpy stubs type **kwds as bool


def _write_torch(params: Any, file) -> None:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch extra
        raise missing_dependency("torch", "writing .pt/.pth") from exc

    def convert(node: Any) -> Any:
        if isinstance(node, Mapping):
            out: Any = cast(Any, type(node))((key, convert(value)) for key, value in node.items())
            if hasattr(node, "_metadata"):
                out._metadata = node._metadata
            return out
        if isinstance(node, np.ndarray):
            return torch.from_numpy(np.array(node, order="C", copy=True))
        return node

    torch.save(convert(params), file)


def _write_msgpack(params: Any, file) -> None:
    msgpack = _msgpack()

    def convert(node: Any, key: str) -> Any:
        if isinstance(node, Mapping):
            return {str(k): convert(v, f"{key}/{k}") for k, v in node.items()}
        if isinstance(node, (int, float, str, bool)) or node is None:
            return node
        array = _numpy_leaf(node, key)
        if array.nbytes > _MAX_CHUNK_BYTES and array.ndim > 0:
            flat = array.reshape(-1)
            size = max(1, _MAX_CHUNK_BYTES // array.itemsize)
            chunks = [flat[i : i + size] for i in range(0, flat.size, size)]
            return {
                _CHUNKED: True,
                "shape": {str(i): s for i, s in enumerate(array.shape)},
                "chunks": {str(i): _ext(c) for i, c in enumerate(chunks)},
            }
        return _ext(array, scalar=array.ndim == 0 and not isinstance(node, np.ndarray))

    def _ext(array: np.ndarray, scalar: bool = False):
        payload = msgpack.packb(
            (array.shape, array.dtype.name, np.ascontiguousarray(array).tobytes("C")), use_bin_type=True
        )
        return msgpack.ExtType(3 if scalar else 1, payload)

    file.write(msgpack.packb(convert(params, ""), use_bin_type=True))
