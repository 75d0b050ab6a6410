"""Interest mining: RFM and embedding segments, and basket rules (FP-growth). Pure logic, no SQL."""
