"""Demand: weekly forecasts per SKU and category, intervals, cold start and reorder advice. Pure logic, no SQL."""
