"""The finboard HTTP API: the job queue and the results over JSON (``finboard serve``).

``core.api.app.create_app(token)`` builds the FastAPI app. Every endpoint calls the same core
functions as the CLI (``core.jobs.queue``, ``core.analysis``, ``core.models.registry``,
``core.tasks.spec``, ``core.monitoring``), opening the store per request; nothing here writes
SQL. With a token, every endpoint except ``/health`` needs ``Authorization: Bearer <token>``.
The OpenAPI page at ``/docs`` is plain HTML built from the app's schema: it loads nothing
from anywhere else.
"""
