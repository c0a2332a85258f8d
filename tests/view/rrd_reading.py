"""Reading a saved view back with rerun's own reader (``rerun.chunk.RrdReader``): every entity's
rows, in time order, as plain Python values."""

from __future__ import annotations

import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any


def read_rrd(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """{entity path: [row, ...]}; a row maps column names (``session_time`` in seconds,
    ``Scalars:scalars``, ``Points3D:positions``...) to values; static rows have no time."""
    from rerun.chunk import RrdReader

    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with warnings.catch_warnings():  # a live view's file has no footer on purpose (docs/viewing.md)
        warnings.simplefilter("ignore")
        chunks = RrdReader(path).stream().to_chunks()
    for chunk in chunks:
        batch = chunk.to_record_batch()
        columns = {name: batch.column(name).to_pylist() for name in batch.schema.names
                   if name != "rerun.controls.RowId"}
        for i in range(chunk.num_rows):
            row = {name: values[i] for name, values in columns.items()}
            if row.get("session_time") is not None:
                row["session_time"] = row["session_time"].total_seconds()
            rows[chunk.entity_path].append(row)
    for entity in rows:
        rows[entity].sort(key=lambda r: r.get("session_time") or 0.0)
    return dict(rows)
