"""Results as bytes for the store's result cache, and back: a dataclass's arrays in an ``.npz``,
everything else as JSON. No pickle, so reading a cached result can never run code."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np


def to_bytes(result) -> bytes:
    """A dataclass instance as bytes. Fields holding nested dataclasses (or tuples of them)
    become dicts; :func:`from_bytes` rebuilds them from ``nested``."""
    arrays, scalars = {}, {}
    for f in dataclasses.fields(result):
        value = getattr(result, f.name)
        if isinstance(value, np.ndarray):
            arrays[f.name] = value
        elif dataclasses.is_dataclass(value):
            scalars[f.name] = dataclasses.asdict(value)
        elif isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            scalars[f.name] = [dataclasses.asdict(v) for v in value]
        else:
            scalars[f.name] = value.tolist() if isinstance(value, np.generic) else value
    buf = io.BytesIO()
    np.savez(buf, **arrays, _scalars=np.array(json.dumps(scalars)))
    return buf.getvalue()


def from_bytes(cls, payload: bytes, *, nested: dict | None = None, tuples=()):
    """The ``cls`` instance that :func:`to_bytes` wrote. ``nested``: field name -> dataclass of
    its items (a list of them comes back as a tuple); ``tuples``: list fields to make tuples."""
    with np.load(io.BytesIO(payload), allow_pickle=False) as z:
        fields = {k: z[k] for k in z.files if k != "_scalars"}
        fields.update(json.loads(str(z["_scalars"])))
    for name, item in (nested or {}).items():
        value = fields.get(name)
        if isinstance(value, list):
            fields[name] = tuple(item(**v) for v in value)
        elif isinstance(value, dict):
            fields[name] = item(**value)
    for name in tuples:
        if isinstance(fields.get(name), list):
            fields[name] = tuple(fields[name])
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in fields.items() if k in known})
