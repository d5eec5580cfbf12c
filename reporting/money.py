"""Minor units to what a person reads: decimal text for CSV, numbers with a currency format for XLSX.

Money stays integer minor units everywhere in StayPulse; only the writers turn it into currency units, using
the ISO 4217 exponent of the row's currency (JPY has none, KWD three, most two).
"""

from __future__ import annotations

import polars as pl

ZERO_DECIMAL = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "ISK",
        "JPY",
        "KMF",
        "KRW",
        "PYG",
        "RWF",
        "UGX",
        "UYI",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)
THREE_DECIMAL = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})


def exponent(currency: str) -> int:
    """Digits after the decimal point in the currency's unit."""
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def exponent_expr(currency: pl.Expr) -> pl.Expr:
    """`exponent` as a polars expression over a currency column."""
    return (
        pl.when(currency.is_in(list(ZERO_DECIMAL)))
        .then(pl.lit(0, dtype=pl.Int64))
        .when(currency.is_in(list(THREE_DECIMAL)))
        .then(pl.lit(3, dtype=pl.Int64))
        .otherwise(pl.lit(2, dtype=pl.Int64))
    )


def as_decimal(amount: pl.Expr, digits: int) -> pl.Expr:
    """Minor units as an exact polars Decimal in currency units (`-1234`, 2 digits -> `-12.34`); no float ever
    rounds it. With no digits the integer already is the amount."""
    if digits == 0:
        return amount
    scale: int = 10**digits
    return amount.cast(pl.Decimal(38, digits)) / scale


def currency_units(amount: pl.Expr, digits: pl.Expr) -> pl.Expr:
    """Minor units as a number of currency units, for spreadsheet cells (Excel stores every number as a double)."""
    return amount.cast(pl.Float64) / pl.lit(10.0).pow(digits)


def excel_number_format(currency: str) -> str:
    """A number format that shows the amount with its currency code, e.g. `#,##0.00 "EUR"`."""
    digits = exponent(currency)
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return f'{pattern} "{currency}";-{pattern} "{currency}"'
