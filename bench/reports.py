"""How fast the earnings report is written, next to pandas and to a bare xlsxwriter loop, for the same report.

Data: a synthetic polars frame of 200,000 bookings shaped exactly like the rows `reporting.definitions.BOOKINGS_SQL`
returns (two currencies, in the query's currency order, 50 properties, stays of 1-7 nights, a tenth cancelled
with refunds), generated chunk by chunk and never timed; no database is involved, so the figures are the
report code's own. Each run happens in its own subprocess so its peak memory (`ru_maxrss`) is its own:

- ours_csv: the CSV path of `reporting.export` (figures per booking, exact decimals, writing), chunk by chunk;
- ours_xlsx: the XLSX path (figures, totals, all three sheets and the chart), chunk by chunk;
- pandas_csv: `DataFrame.to_csv` of the finished Bookings table (building that table is not timed);
- openpyxl_xlsx: `DataFrame.to_excel(engine="openpyxl")` of the same table plus the summary and by-property
  tables (building them is not timed);
- bare_xlsx: a plain xlsxwriter `constant_memory` loop writing the same Bookings cells with the same formats from
  values already converted (the conversion is not timed): the floor for any xlsxwriter report.

Every run is repeated (3 rounds, the five runs interleaved in each, a fresh process each time) and its best
time kept, so that other work on the machine disturbs all of them alike; peak memory is the highest of the
repeats. Ours also runs once at a quarter of the rows, to show memory stays flat as rows grow.

    .venv/bin/python bench/reports.py [--rows 200000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import polars as pl
import xlsxwriter

from reporting.csv_export import csv_chunk
from reporting.definitions import RAW_SCHEMA, Window, booking_figures
from reporting.earnings import BOOKING_COLUMNS, CHUNK_ROWS, EarningsAccumulator, published
from reporting.money import excel_number_format
from reporting.xlsx_export import LABELS, XlsxEarningsWriter, excel_cells

WINDOW = Window(dt.date(2026, 1, 1), dt.date(2027, 1, 1))
HOST_FEE_BPS = 300
# What `available_nights` answers for the synthetic host: 40 EUR and 10 JPY properties, never blocked.
# What `currency_figures` would answer for these bookings (only the shapes matter to the bench).
PER_CURRENCY = pl.DataFrame(
    {
        "currency": ["EUR", "JPY"],
        "available_nights": [40 * 365, 10 * 365],
        "bookings_cancelled": [16_000, 4_000],
        "bookings_expired": [1_000, 250],
        "stay_nights": [500_000, 125_000],
        "lead_time_days": [4_000_000, 1_000_000],
    }
)
TARGETS = {"csv_speedup_vs_pandas": 10.0, "xlsx_speedup_vs_openpyxl": 3.0, "xlsx_ratio_vs_bare": 1.15}
MODES = ("ours_csv", "ours_xlsx", "pandas_csv", "openpyxl_xlsx", "bare_xlsx")


def synthetic_chunks(rows: int) -> Iterator[pl.DataFrame]:
    """Deterministic bookings shaped like the report query's rows, `CHUNK_ROWS` at a time."""
    for offset in range(0, rows, CHUNK_ROWS):
        index = pl.int_range(offset, min(offset + CHUNK_ROWS, rows), eager=True).alias("i")
        i = pl.col("i")
        nights = 1 + i % 7
        price = 8_000 + (i % 13) * 500
        cancelled = i % 10 == 0
        confirmed_at = pl.lit(dt.datetime(2025, 12, 1, tzinfo=dt.UTC)) + pl.duration(hours=i % (24 * 390))
        frame = pl.DataFrame(index).select(
            booking_id=pl.format("00000000-0000-4000-8000-{}", i.cast(pl.String).str.zfill(12)),
            property_id=pl.format("property-{}", i % 50),
            property=pl.format("Property {}", i % 50),
            guest_name=pl.format("Guest {}", i),
            check_in=pl.lit(dt.date(2025, 12, 20)) + pl.duration(days=i % 400),
            check_out=pl.lit(dt.date(2025, 12, 20)) + pl.duration(days=i % 400 + nights),
            status=pl.when(cancelled).then(pl.lit("CANCELLED")).otherwise(pl.lit("CONFIRMED")),
            currency=pl.when(i < rows * 4 // 5).then(pl.lit("EUR")).otherwise(pl.lit("JPY")),
            accommodation=price * nights,
            cleaning_fee=3_000 + 0 * i,
            refunded_amount=pl.when(cancelled).then(price * nights // 2).otherwise(0),
            total_amount=(price * nights + 3_000) * 11 // 10,
            nightly_prices=pl.int_ranges(0, nights).list.eval(pl.element() * 0).list.eval(pl.element() + 1) * price,
            confirmed_at=confirmed_at,
            confirmed_on=confirmed_at.dt.date(),
            cancelled_on=pl.when(cancelled).then(confirmed_at.dt.date() + pl.duration(days=3)).otherwise(None),
        )
        yield frame.cast(RAW_SCHEMA)  # type: ignore[arg-type]


def report_tables(rows: int) -> tuple[pl.DataFrame, EarningsAccumulator]:
    report = EarningsAccumulator(WINDOW, HOST_FEE_BPS)
    bookings = pl.concat([report.add(raw) for raw in synthetic_chunks(rows)])
    return bookings, report


def run_ours_csv(rows: int, out: Path) -> float:
    """The CSV path of `reporting.export.csv_pieces`, timed without making the synthetic chunks."""
    seconds = 0.0
    with out.open("wb") as file:
        for number, raw in enumerate(synthetic_chunks(rows)):
            started = time.perf_counter()
            file.write(csv_chunk(published(booking_figures(raw, WINDOW, HOST_FEE_BPS)), header=number == 0))
            seconds += time.perf_counter() - started
    return seconds


def run_ours_xlsx(rows: int, out: Path) -> float:
    started = time.perf_counter()
    report = EarningsAccumulator(WINDOW, HOST_FEE_BPS)
    writer = XlsxEarningsWriter(str(out))
    seconds = time.perf_counter() - started
    for raw in synthetic_chunks(rows):
        started = time.perf_counter()
        writer.write_bookings(report.add(raw))
        seconds += time.perf_counter() - started
    started = time.perf_counter()
    writer.finish(report.finish(PER_CURRENCY))
    return seconds + time.perf_counter() - started


def to_pandas(frame: pl.DataFrame) -> pd.DataFrame:
    """Through Python lists, so pyarrow is not needed (the conversion is never timed)."""
    return pd.DataFrame(frame.to_dict(as_series=False))


def run_pandas_csv(rows: int, out: Path) -> float:
    frame = to_pandas(report_tables(rows)[0])
    started = time.perf_counter()
    frame.to_csv(out, index=False)
    return time.perf_counter() - started


def run_openpyxl_xlsx(rows: int, out: Path) -> float:
    bookings, report = report_tables(rows)
    totals = report.finish(PER_CURRENCY)
    naive = [pl.col(name).dt.replace_time_zone(None) for name in ("confirmed_at", "paid_at")]
    frames = {
        "Summary": to_pandas(totals.summary),
        "Bookings": to_pandas(bookings.with_columns(naive)),
        "By property": to_pandas(totals.by_property),
    }
    started = time.perf_counter()
    with pd.ExcelWriter(out, engine="openpyxl") as excel:
        for name, frame in frames.items():
            frame.to_excel(excel, sheet_name=name, index=False)
    return time.perf_counter() - started


def run_bare_xlsx(rows: int, out: Path) -> float:
    """The floor: the same Bookings cells, converted beforehand, written by the plainest loop."""
    chunks = [excel_cells(EarningsAccumulator(WINDOW, HOST_FEE_BPS).add(raw)) for raw in synthetic_chunks(rows)]
    started = time.perf_counter()
    workbook = xlsxwriter.Workbook(str(out), {"constant_memory": True})
    sheet = workbook.add_worksheet("Bookings")
    header = workbook.add_format({"bold": True})
    date = workbook.add_format({"num_format": "yyyy-mm-dd"})
    stamp = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    money = {code: workbook.add_format({"num_format": excel_number_format(code)}) for code in ("EUR", "JPY")}
    for col, name in enumerate(BOOKING_COLUMNS):
        sheet.write_string(0, col, LABELS[name][0], header)
    write_string, write_number = sheet.write_string, sheet.write_number
    row = 0
    for cells in chunks:
        for v in cells.iter_rows():
            row += 1
            fmt = money[v[15]]
            write_string(row, 0, v[0])
            write_string(row, 1, v[1])
            write_string(row, 2, v[2])
            write_number(row, 3, v[3], date)
            write_number(row, 4, v[4], date)
            write_number(row, 5, v[5])
            write_string(row, 6, v[6])
            for col in range(7, 13):
                write_number(row, col, v[col], fmt)
            write_number(row, 13, v[13])
            write_number(row, 14, v[14], fmt)
            write_string(row, 15, v[15])
            write_number(row, 16, v[16], stamp)
            write_number(row, 17, v[17], stamp)
    workbook.close()
    return time.perf_counter() - started


RUNS = {
    "ours_csv": (run_ours_csv, "csv"),
    "ours_xlsx": (run_ours_xlsx, "xlsx"),
    "pandas_csv": (run_pandas_csv, "csv"),
    "openpyxl_xlsx": (run_openpyxl_xlsx, "xlsx"),
    "bare_xlsx": (run_bare_xlsx, "xlsx"),
}


def child(mode: str, rows: int) -> None:
    run, suffix = RUNS[mode]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / f"report.{suffix}"
        seconds = run(rows, out)
        size = out.stat().st_size
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"mode": mode, "rows": rows, "seconds": seconds, "bytes": size, "peak_rss_mib": peak_mib}))


def run_once(mode: str, rows: int) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--rows", str(rows)], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    print(
        f"{mode:>14} {int(result['rows']):>8} rows  {result['seconds']:8.2f} s  "
        f"{result['bytes'] / 2**20:7.1f} MiB file  peak RSS {result['peak_rss_mib']:7.1f} MiB",
        flush=True,
    )
    return result


def measure(modes: tuple[str, ...], rows: int, repeats: int) -> dict[str, dict[str, float]]:
    """Every mode `repeats` times, interleaved so that a busy spell of the machine hits them alike; per mode the
    best time and the highest peak memory."""
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    for _ in range(repeats):
        for mode in modes:
            runs[mode].append(run_once(mode, rows))
    return {
        mode: {
            "seconds": min(run["seconds"] for run in results),
            "peak_rss_mib": max(run["peak_rss_mib"] for run in results),
        }
        for mode, results in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=MODES)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rows)
        return
    quarter = max(args.rows // 4, CHUNK_ROWS)
    small = measure(("ours_csv", "ours_xlsx"), quarter, 1)
    full = measure(MODES, args.rows, args.repeats)
    figures = {
        "bench": "reports",
        "rows": args.rows,
        "repeats": args.repeats,
        "data": "synthetic polars frame shaped like the report query's rows",
        "csv_s": round(full["ours_csv"]["seconds"], 3),
        "pandas_csv_s": round(full["pandas_csv"]["seconds"], 3),
        "csv_speedup_vs_pandas": round(full["pandas_csv"]["seconds"] / full["ours_csv"]["seconds"], 2),
        "xlsx_s": round(full["ours_xlsx"]["seconds"], 3),
        "openpyxl_xlsx_s": round(full["openpyxl_xlsx"]["seconds"], 3),
        "xlsx_speedup_vs_openpyxl": round(full["openpyxl_xlsx"]["seconds"] / full["ours_xlsx"]["seconds"], 2),
        "bare_xlsx_s": round(full["bare_xlsx"]["seconds"], 3),
        "xlsx_ratio_vs_bare": round(full["ours_xlsx"]["seconds"] / full["bare_xlsx"]["seconds"], 3),
        "peak_rss_mib": round(max(full["ours_csv"]["peak_rss_mib"], full["ours_xlsx"]["peak_rss_mib"]), 1),
        "peak_rss_mib_by_run": {mode: round(result["peak_rss_mib"], 1) for mode, result in full.items()},
        f"ours_peak_rss_mib_at_{quarter}_rows": {
            mode: round(result["peak_rss_mib"], 1) for mode, result in small.items()
        },
        "targets": TARGETS,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
