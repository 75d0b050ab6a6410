"""One router module per domain; each is mounted by :func:`shoplm.serve.app.create_app`."""
