"""Device selection for the embedder: ``auto | cpu | cuda | cuda:N``.

Importing torch costs seconds, so it happens only when a CUDA question has to be answered
("cpu" never imports it).
"""

from __future__ import annotations

import os
import re

__all__ = ["DeviceError", "resolve_device", "cpu_threads", "cuda_devices"]

AUTO_CPU_NOTE = "CUDA not available; using CPU"

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


class DeviceError(RuntimeError):
    """The requested device (or a dtype for it) cannot be used on this machine."""


def cuda_devices() -> tuple[list[str], str | None]:
    """Names of the visible CUDA devices, and why there are none when the list is empty."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency of the project
        return [], "torch is not installed"
    if torch.version.cuda is None:
        return [], f"this torch build ({torch.__version__}) has no CUDA support"
    try:
        if not torch.cuda.is_available():
            return [], "torch.cuda.is_available() is False (no driver or no visible GPU)"
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())], None
    except Exception as exc:  # a broken driver must not crash device selection
        return [], f"CUDA initialisation failed: {exc}"


def resolve_device(requested: str) -> tuple[str, str | None]:
    """Turn a device request into a concrete torch device string and an optional note.

    ``auto`` picks ``cuda:0`` when CUDA is usable, else ``cpu`` with the note
    ``"CUDA not available; using CPU"``. ``cuda`` means ``cuda:0``. An explicit CUDA device that
    does not exist raises :class:`DeviceError` naming it and what is available.
    """
    if not isinstance(requested, str):
        raise DeviceError(f"device must be a string like 'auto', 'cpu', 'cuda' or 'cuda:0', got {requested!r}")
    text = requested.strip().lower()
    match = _DEVICE_RE.match(text)
    if match is None or (match.group(1) != "cuda" and match.group(2) is not None):
        raise DeviceError(f"invalid device {requested!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N' (N = GPU index)")
    kind, index = match.group(1), match.group(2)
    if kind == "cpu":
        return "cpu", None
    names, why = cuda_devices()
    if kind == "auto":
        return ("cuda:0", None) if names else ("cpu", AUTO_CPU_NOTE)
    wanted = int(index or 0)
    if not names:
        raise DeviceError(
            f"device {requested!r} was requested but CUDA is not available: {why}. "
            "Available devices: cpu. Use device='cpu', or 'auto' to fall back to the CPU."
        )
    if wanted >= len(names):
        listing = ", ".join(f"cuda:{i} ({name})" for i, name in enumerate(names))
        raise DeviceError(
            f"device 'cuda:{wanted}' was requested but this machine has {len(names)} CUDA device(s): "
            f"{listing}. Use one of those, or 'auto'."
        )
    return f"cuda:{wanted}", None


def cpu_threads() -> int:
    """Cores this process may use: CPU affinity, capped by a cgroup v2 CPU quota.

    ``CRAWLMIX_EMBED_THREADS`` overrides it (useful to share a machine between processes).
    """
    env = os.environ.get("CRAWLMIX_EMBED_THREADS", "").strip()
    if env:
        try:
            value = int(env)
        except ValueError:
            raise DeviceError(f"CRAWLMIX_EMBED_THREADS must be a positive integer, got {env!r}") from None
        if value < 1:
            raise DeviceError(f"CRAWLMIX_EMBED_THREADS must be a positive integer, got {env!r}")
        return value
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        count = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="ascii") as handle:
            quota, period = handle.read().split()[:2]
        if quota != "max":
            count = min(count, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)
