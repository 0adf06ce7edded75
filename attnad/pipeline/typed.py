"""Typed output columns: CSV text of the model's typed columns written as numbers, booleans and
times when the output is Parquet, so numeric SQL downstream works. A cell that does not parse
is written as null (it was scored as missing). CSV output keeps every cell verbatim.

    types = typed_columns(batch.schema, kept, det.schema_)   # {name: role} to convert
    arr = typed_array(batch.column("amount"), "numeric", ".")
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from attnad.data.schema import Schema, to_bool_codes, to_epoch_seconds, to_float

OUTPUT_TYPES = {"numeric": pa.float64(), "boolean": pa.bool_(),
                "datetime": pa.timestamp("us", tz="UTC")}  # times are read as UTC (naive ones too)


def typed_columns(schema: pa.Schema, kept: list[str], model_schema: Schema) -> dict[str, str]:
    """The kept text columns whose role the model types, with their roles."""
    out = {}
    for name in kept:
        t = schema.field(name).type
        role = model_schema.role_of(name)
        if role in OUTPUT_TYPES and (pa.types.is_string(t) or pa.types.is_large_string(t)):
            out[name] = role
    return out


def typed_array(arr, role: str, decimal: str) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if role == "numeric":
        values, _ = to_float(arr, decimal)
        return pa.array(values, type=pa.float64(), from_pandas=True)  # NaN -> null
    if role == "boolean":
        codes, _ = to_bool_codes(arr)
        return pa.array(codes == 1, type=pa.bool_(), mask=codes < 0)
    seconds, _ = to_epoch_seconds(arr)
    missing = np.isnan(seconds)
    micros = np.where(missing, 0, np.round(seconds * 1e6)).astype(np.int64)
    return pa.array(micros, type=OUTPUT_TYPES["datetime"], mask=missing)
