"""Version stamps recorded with every output, so lineage says which code and config made it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any


def config_hash(*parts: Any) -> str:
    """Short stable hash of configuration objects (dataclasses, pydantic models, plain values)."""
    payload = json.dumps([_plain(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return value
