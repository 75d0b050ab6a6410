"""Privacy: differential-privacy releases of shop statistics (opendp) and their budget accounting.

Pure logic, no SQL: the application floor reads the store, hands frames in here and records each
release in the persisted budget ledger.
"""
