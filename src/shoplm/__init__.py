"""shoplm: pretrained language models for every decision of an online shop."""

__version__ = "0.1.0"
