"""The earnings report as CSV: UTF-8, a header row, ISO dates and UTC timestamps, amounts as exact decimal
currency units beside their currency code. One row per booking (the Bookings table); totals live in the XLSX
Summary."""

from __future__ import annotations

from io import BytesIO

import polars as pl

from reporting.earnings import MONEY_COLUMNS
from reporting.money import as_decimal, exponent_expr

MEDIA_TYPE = "text/csv; charset=utf-8"
TIMESTAMP_COLUMNS = ("confirmed_at", "paid_at")
# The timestamps are UTC; writing them without their zone and a literal offset is several times faster.
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S+00:00"


def csv_chunk(rows: pl.DataFrame, *, header: bool) -> bytes:
    """One chunk of Bookings rows as CSV bytes; the first chunk carries the header.

    A Decimal column has one scale, so the chunk is written in runs of rows whose currencies have the same number
    of digits. The report query returns rows grouped by currency, so a chunk has a run or two.
    """
    digits = exponent_expr(pl.col("currency"))
    utc = [pl.col(name).dt.convert_time_zone("UTC").dt.replace_time_zone(None) for name in TIMESTAMP_COLUMNS]
    staged = rows.with_columns(*utc, _digits=digits).with_columns(
        _run=(pl.col("_digits") != pl.col("_digits").shift()).fill_null(True).cum_sum()
    )
    money = [name for name in rows.columns if name in MONEY_COLUMNS]
    buffer = BytesIO()
    runs = staged.partition_by("_run", maintain_order=True) if staged.height else [staged]
    for number, run in enumerate(runs):
        places = run["_digits"][0] if run.height else 2
        readable = run.drop("_digits", "_run").with_columns(as_decimal(pl.col(name), places) for name in money)
        readable.write_csv(
            buffer, include_header=header and number == 0, datetime_format=TIMESTAMP_FORMAT, date_format="%Y-%m-%d"
        )
    return buffer.getvalue()
