"""Durable background jobs: a queue in SQLite, one worker per store, one subprocess per job.

- ``core.jobs.queue``: submit / get / list / cancel / resume, and the row updates (the jobs
  tables' owner: the only module besides ``core.store`` that writes SQL).
- ``core.jobs.worker``: ``ensure_worker()`` and the worker loop (``finboard worker``).
- ``core.jobs.run``: ``python -m core.jobs.run JOB_ID`` runs one job in its own process.
- ``core.jobs.launch``: the argv a job runs with (one process, or Accelerate on many GPUs).
- ``core.jobs.reasons``: a failed job's readable one-line reason.
- ``core.jobs.kinds``: the job kinds, in one table (checking, running, label).
"""
