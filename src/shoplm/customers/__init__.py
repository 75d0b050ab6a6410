"""Customers over time: lifetime value (BG/NBD with Gamma-Gamma) and behavioural churn. Pure logic, no SQL."""
