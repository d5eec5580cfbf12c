"""The earnings report as CSV: UTF-8, a header row, ISO dates and timestamps, amounts as exact decimal currency
units beside their currency code. One row per booking (the Bookings table); totals live in the XLSX Summary."""

from __future__ import annotations

from io import BytesIO

import polars as pl

from reporting.earnings import MONEY_COLUMNS
from reporting.money import decimal_text, exponent_expr

MEDIA_TYPE = "text/csv; charset=utf-8"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%:z"


def csv_chunk(rows: pl.DataFrame, *, header: bool) -> bytes:
    """One chunk of Bookings rows as CSV bytes; the first chunk carries the header."""
    digits = exponent_expr(pl.col("currency"))
    readable = rows.with_columns(
        decimal_text(pl.col(name), digits).alias(name) for name in rows.columns if name in MONEY_COLUMNS
    )
    buffer = BytesIO()
    readable.write_csv(buffer, include_header=header, datetime_format=TIMESTAMP_FORMAT, date_format="%Y-%m-%d")
    return buffer.getvalue()
