"""Writing an earnings report to a file or a stream, in either format, from one pass over the bookings."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator
from typing import IO, Literal

import polars as pl
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from reporting import csv_export, xlsx_export
from reporting.definitions import RAW_SCHEMA, Window, booking_figures
from reporting.earnings import EarningsAccumulator, currency_figures, published, raw_chunks
from service.db import session_factory

Format = Literal["csv", "xlsx"]
MEDIA_TYPES: dict[str, str] = {"csv": csv_export.MEDIA_TYPE, "xlsx": xlsx_export.MEDIA_TYPE}
STREAM_CHUNK_BYTES = 1 << 20


def checked_format(value: str) -> Format:
    """A stored format as the type it is (the table's check constraint allows nothing else)."""
    if value == "csv":
        return "csv"
    if value == "xlsx":
        return "xlsx"
    raise ValueError(f"unknown report format {value!r}")


def file_name(window: Window, fmt: str) -> str:
    return f"staypulse-earnings-{window.start.isoformat()}-{window.end.isoformat()}.{fmt}"


async def csv_pieces(
    session: AsyncSession, host_id: uuid.UUID, window: Window, host_fee_bps: int
) -> AsyncIterator[tuple[bytes, int]]:
    """The CSV a piece per chunk of bookings, with each piece's row count. The CSV is the Bookings table alone, so
    no totals are summed for it; an empty report is its header alone."""
    header = True
    async for raw in raw_chunks(session, host_id, window):
        yield csv_export.csv_chunk(published(booking_figures(raw, window, host_fee_bps)), header=header), raw.height
        header = False
    if header:
        empty = published(booking_figures(pl.DataFrame(schema=RAW_SCHEMA), window, host_fee_bps))
        yield csv_export.csv_chunk(empty, header=True), 0


async def write_report(
    session: AsyncSession, host_id: uuid.UUID, window: Window, fmt: Format, host_fee_bps: int, out: IO[bytes]
) -> int:
    """Writes the report into `out`; answers its number of booking rows.

    The XLSX work is CPU-bound, so each chunk is written in a thread and the event loop keeps serving.
    """
    if fmt == "csv":
        rows = 0
        async for piece, count in csv_pieces(session, host_id, window, host_fee_bps):
            out.write(piece)
            rows += count
        return rows
    report = EarningsAccumulator(window, host_fee_bps)
    writer = await asyncio.to_thread(xlsx_export.XlsxEarningsWriter, out)
    async for raw in raw_chunks(session, host_id, window):
        await asyncio.to_thread(writer.write_bookings, report.add(raw))
    totals = report.finish(await currency_figures(session, host_id, window))
    await asyncio.to_thread(writer.finish, totals)
    return report.row_count


async def stream_report(
    engine: AsyncEngine, host_id: uuid.UUID, window: Window, fmt: Format, host_fee_bps: int
) -> AsyncIterator[bytes]:
    """The report as a download that is never stored: CSV piece by piece as bookings arrive; XLSX (a zip, complete
    only once closed) through a temporary file."""
    async with session_factory(engine).begin() as session:
        if fmt == "csv":
            async for piece, _ in csv_pieces(session, host_id, window, host_fee_bps):
                yield piece
            return
        with tempfile.TemporaryFile() as out:
            await write_report(session, host_id, window, fmt, host_fee_bps, out)
            out.seek(0)
            while piece := await asyncio.to_thread(out.read, STREAM_CHUNK_BYTES):
                yield piece
