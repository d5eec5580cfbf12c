"""Earnings reports: polars queries, CSV and XLSX writers, storage and the scheduled statements."""
