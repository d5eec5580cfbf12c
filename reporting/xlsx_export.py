"""The earnings report as an XLSX workbook: Summary (totals per currency, the reconciliation of the two views,
monthly net earnings and their chart), Bookings and By property.

Cells are typed: dates are numbers with a date format (what Excel itself stores), money is numeric in currency
units with a format naming the currency, counts are integers. The workbook is written in xlsxwriter's
`constant_memory` mode, so rows go to disk as they come and a large report costs no more memory than a small one.
Amounts of different currencies are never summed together: every total is per currency.
"""

from __future__ import annotations

import datetime as dt
from typing import IO, Any

import polars as pl
import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from reporting.earnings import (
    BOOKING_COLUMNS,
    BY_PROPERTY_COLUMNS,
    BY_PROPERTY_MONEY,
    MONEY_COLUMNS,
    SUMMARY_COLUMNS,
    SUMMARY_MONEY,
    EarningsTotals,
)
from reporting.money import currency_units, excel_number_format, exponent, exponent_expr

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXCEL_EPOCH = dt.date(1899, 12, 30)
SECONDS_PER_DAY = 86_400.0

LABELS = {
    "booking_id": ("Booking ID", 38),
    "property": ("Property", 28),
    "guest_name": ("Guest", 24),
    "check_in": ("Check-in", 12),
    "check_out": ("Check-out", 12),
    "nights": ("Nights", 8),
    "status": ("Status", 12),
    "accommodation": ("Accommodation", 16),
    "cleaning_fee": ("Cleaning fee", 14),
    "gross_earnings": ("Gross earnings", 16),
    "host_fee": ("Host fee", 14),
    "refunds": ("Refunds", 14),
    "net_payout": ("Net payout", 16),
    "nights_in_window": ("Nights in window", 10),
    "accommodation_in_window": ("Accommodation in window", 16),
    "currency": ("Currency", 9),
    "confirmed_at": ("Confirmed at (UTC)", 20),
    "paid_at": ("Paid at (UTC)", 20),
    "month": ("Month", 10),
    "bookings_confirmed": ("Bookings confirmed", 12),
    "bookings_cancelled": ("Bookings cancelled", 12),
    "bookings_expired": ("Bookings expired", 12),
    "cancellation_rate": ("Cancellation rate", 12),
    "average_length_of_stay": ("Average length of stay", 12),
    "average_lead_time_days": ("Average lead time days", 12),
    "host_fees": ("Host fees", 14),
    "net_earnings": ("Net earnings", 16),
    "booked_nights": ("Booked nights", 10),
    "accommodation_revenue": ("Accommodation revenue", 18),
    "adr": ("ADR", 14),
    "available_nights": ("Available nights", 10),
    "occupancy_rate": ("Occupancy", 10),
    "revpar": ("RevPAR", 14),
}
TEXT, INTEGER, MONEY, DATE, TIMESTAMP = range(5)
DATE_COLUMNS = frozenset({"check_in", "check_out"})
TIMESTAMP_COLUMNS = frozenset({"confirmed_at", "paid_at"})


def excel_cells(rows: pl.DataFrame) -> pl.DataFrame:
    """Bookings rows as the values the cells hold: money in currency units, dates and times as Excel serials."""
    digits = exponent_expr(pl.col("currency"))
    epoch = pl.lit(EXCEL_EPOCH)
    return rows.with_columns(
        *(currency_units(pl.col(name), digits) for name in rows.columns if name in MONEY_COLUMNS),
        *((pl.col(name) - epoch).dt.total_days().cast(pl.Float64) for name in rows.columns if name in DATE_COLUMNS),
        *(
            pl.col(name).dt.epoch("s").cast(pl.Float64) / SECONDS_PER_DAY + (dt.date(1970, 1, 1) - EXCEL_EPOCH).days
            for name in rows.columns
            if name in TIMESTAMP_COLUMNS
        ),
    )


def _kind(name: str) -> int:
    if name in MONEY_COLUMNS:
        return MONEY
    if name in DATE_COLUMNS:
        return DATE
    if name in TIMESTAMP_COLUMNS:
        return TIMESTAMP
    if name in ("nights", "nights_in_window"):
        return INTEGER
    return TEXT


class XlsxEarningsWriter:
    """Writes one workbook: Bookings rows chunk by chunk, then the totals, then closes it into `out`."""

    def __init__(self, out: str | IO[bytes]) -> None:
        self.workbook = xlsxwriter.Workbook(out, {"constant_memory": True})
        self.summary = self.workbook.add_worksheet("Summary")
        self.bookings = self.workbook.add_worksheet("Bookings")
        self.by_property = self.workbook.add_worksheet("By property")
        self.bold = self.workbook.add_format({"bold": True})
        self.header = self.workbook.add_format({"bold": True, "bg_color": "#DDE7F0", "bottom": 1, "text_wrap": True})
        self.date = self.workbook.add_format({"num_format": "yyyy-mm-dd"})
        self.month = self.workbook.add_format({"num_format": "yyyy-mm"})
        self.timestamp = self.workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.percent = self.workbook.add_format({"num_format": "0.0%"})
        self._money: dict[str, Format] = {}
        self._row = 0
        _table_header(self.bookings, BOOKING_COLUMNS, self.header)

    def money(self, currency: str) -> Format:
        """One number format per currency, so each amount shows its currency code."""
        fmt = self._money.get(currency)
        if fmt is None:
            fmt = self._money[currency] = self.workbook.add_format({"num_format": excel_number_format(currency)})
        return fmt

    def write_bookings(self, rows: pl.DataFrame) -> None:
        """Appends one chunk of Bookings rows (as `EarningsAccumulator.add` answers them)."""
        cells = excel_cells(rows)
        sheet = self.bookings
        write_string, write_number = sheet.write_string, sheet.write_number
        kinds = [(col, _kind(name)) for col, name in enumerate(cells.columns)]
        currency_col = cells.columns.index("currency")
        date, timestamp = self.date, self.timestamp
        row = self._row
        for values in cells.iter_rows():
            row += 1
            money = self.money(values[currency_col])
            for col, kind in kinds:
                value = values[col]
                if value is None:
                    continue
                if kind == MONEY:
                    write_number(row, col, value, money)
                elif kind == TEXT:
                    write_string(row, col, value)
                elif kind == DATE:
                    write_number(row, col, value, date)
                elif kind == TIMESTAMP:
                    write_number(row, col, value, timestamp)
                else:
                    write_number(row, col, value)
        self._row = row

    def finish(self, totals: EarningsTotals) -> None:
        """Writes Summary and By property, then closes the workbook."""
        self.bookings.autofilter(0, 0, max(self._row, 1), len(BOOKING_COLUMNS) - 1)
        self._write_summary(totals)
        self._write_by_property(totals.by_property)
        self.workbook.close()

    def _write_summary(self, totals: EarningsTotals) -> None:
        sheet = self.summary
        sheet.set_column(0, 0, 62)
        sheet.set_column(1, len(SUMMARY_COLUMNS), 16)
        sheet.write_string(0, 0, "StayPulse earnings report", self.bold)
        sheet.write_string(1, 0, "Window (property-local dates, end exclusive)")
        sheet.write_datetime(1, 1, _midnight(totals.window.start), self.date)
        sheet.write_datetime(1, 2, _midnight(totals.window.end), self.date)
        row = 3
        sheet.write_string(row, 0, "Totals per currency (never summed across currencies)", self.bold)
        row += 1
        for col, name in enumerate(SUMMARY_COLUMNS):
            sheet.write_string(row, col, LABELS[name][0], self.header)
        for record in totals.summary.iter_rows(named=True):
            row += 1
            self._write_record(sheet, row, SUMMARY_COLUMNS, record, SUMMARY_MONEY)
        row += 2
        sheet.write_string(row, 0, "Reconciliation: payout view to occupancy view", self.bold)
        row += 1
        for col, label in enumerate(("Step", "Currency", "Amount")):
            sheet.write_string(row, col, label, self.header)
        for record in totals.reconciliation.iter_rows(named=True):
            row += 1
            sheet.write_string(row, 0, record["line"])
            sheet.write_string(row, 1, record["currency"])
            sheet.write_number(row, 2, _units(record["amount"], record["currency"]), self.money(record["currency"]))
        row += 2
        self._write_monthly_net(sheet, row, totals.monthly_net)

    def _write_monthly_net(self, sheet: Worksheet, row: int, monthly: pl.DataFrame) -> None:
        """A month by currency table of net earnings, and a column chart of it."""
        sheet.write_string(row, 0, "Net earnings per month (by confirmation and refund date)", self.bold)
        row += 1
        currencies = sorted(set(monthly["currency"]))
        wide = monthly.pivot(on="currency", index="month", values="net_earnings").fill_null(0).sort("month")
        sheet.write_string(row, 0, "Month", self.header)
        for col, currency in enumerate(currencies, start=1):
            sheet.write_string(row, col, currency, self.header)
        first = row + 1
        for record in wide.iter_rows(named=True):
            row += 1
            sheet.write_datetime(row, 0, _midnight(record["month"]), self.month)
            for col, currency in enumerate(currencies, start=1):
                sheet.write_number(row, col, _units(record[currency], currency), self.money(currency))
        if not currencies or row < first:
            return
        chart = self.workbook.add_chart({"type": "column"})
        for col in range(1, len(currencies) + 1):
            chart.add_series(
                {
                    "name": ["Summary", first - 1, col],
                    "categories": ["Summary", first, 0, row, 0],
                    "values": ["Summary", first, col, row, col],
                }
            )
        chart.set_title({"name": "Net earnings per month"})
        chart.set_x_axis({"num_format": "yyyy-mm"})
        sheet.insert_chart(row + 2, 0, chart)

    def _write_by_property(self, by_property: pl.DataFrame) -> None:
        sheet = self.by_property
        _table_header(sheet, BY_PROPERTY_COLUMNS, self.header)
        row = 0
        for record in by_property.iter_rows(named=True):
            row += 1
            self._write_record(sheet, row, BY_PROPERTY_COLUMNS, record, BY_PROPERTY_MONEY)
        sheet.autofilter(0, 0, max(row, 1), len(BY_PROPERTY_COLUMNS) - 1)

    def _write_record(
        self, sheet: Worksheet, row: int, columns: tuple[str, ...], record: dict[str, Any], money: frozenset[str]
    ) -> None:
        currency = record["currency"]
        for col, name in enumerate(columns):
            value = record[name]
            if name in money:
                sheet.write_number(row, col, _units(value, currency), self.money(currency))
            elif name in ("occupancy_rate", "cancellation_rate"):
                sheet.write_number(row, col, value, self.percent)
            elif isinstance(value, dt.date):
                sheet.write_datetime(row, col, _midnight(value), self.month if name == "month" else self.date)
            elif isinstance(value, str):
                sheet.write_string(row, col, value)
            else:
                sheet.write_number(row, col, value)


def _table_header(sheet: Worksheet, columns: tuple[str, ...], fmt: Format) -> None:
    """Widths, a bold header row that stays in view, and (set at the end) an autofilter."""
    for col, name in enumerate(columns):
        sheet.set_column(col, col, LABELS[name][1])
        sheet.write_string(0, col, LABELS[name][0], fmt)
    sheet.freeze_panes(1, 0)


def _units(amount: int, currency: str) -> float:
    return amount / 10.0 ** exponent(currency)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time())
