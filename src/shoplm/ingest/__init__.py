"""Data in: readers (CSV, TSV, JSONL, Parquet), row validation, pseudonymization, the ingest pipeline and importers.

Submodules load on use, so a process that only serves does not import the readers.
"""
