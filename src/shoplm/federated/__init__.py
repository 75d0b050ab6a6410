"""Federated training: several shops train one model without pooling raw data (Flower in simulation).

Pure logic, no SQL: clients hold their shop's own frames; only model parameters travel.
"""
