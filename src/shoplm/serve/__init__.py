"""The HTTP service and dashboard: ``shoplm serve``; :func:`create_app` for embedding and tests."""

from shoplm.serve.app import create_app

__all__ = ["create_app"]
