"""The FastAPI app behind ``finboard serve``: the job queue and the results, as JSON.

    >>> app = create_app(token=None)                                          # doctest: +SKIP
    >>> sorted(app.openapi()["paths"])[:3]                                    # doctest: +SKIP
    ['/compare', '/health', '/jobs']

Every endpoint calls the core function the CLI calls (``core.jobs.queue``, ``core.analysis``,
``core.models.registry``, ``core.tasks.spec``, ``core.monitoring``) on a store opened for the
request (``core.store.connect()``, which honours ``FINBOARD_DB``). A request a user got wrong
is answered 422 with the field it concerns, in FastAPI's own shape
(``{"detail": [{"loc": ["body", "limit"], "msg": ...}]}``), and stores nothing.

With a token, every endpoint except ``/health`` needs ``Authorization: Bearer <token>``
(compared in constant time); without one, 401 with ``WWW-Authenticate: Bearer``. FastAPI's
own docs pages load Swagger UI from a CDN, so they are off: ``/docs`` is a plain HTML page
built from ``app.openapi()`` that loads nothing from anywhere (``core.api.docs``).

No ``from __future__ import annotations`` here: FastAPI reads the dependencies in the
annotations of the guard defined inside ``bearer_guard``, which must be evaluated at once.
"""

import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
)

from core import access, store
from core.api.docs import DOCS_POLICY, docs_page
from core.data.importer import DatasetImportError
from core.jobs import kinds, queue, worker
from core.jobs.kinds import JobError
from core.models.registry import RegistryError
from core.store import Database, StoreError
from core.tasks.spec import TaskSpecError

TRAINING_KINDS = ("train", "finetune_compare")
USER_ERRORS = (JobError, ValueError, RegistryError, TaskSpecError, DatasetImportError)

# ---------------------------------------------------------------- requests and responses

Setting = StrictBool | StrictInt | StrictFloat | StrictStr


class JobRequest(BaseModel):
    """A job to queue. ``eval``: ``model_id``, ``tasks`` (default: every task) and ``limit``
    (only the first N test items: a smoke test, not ranked). ``train`` / ``finetune_compare``:
    ``model_id``, ``task``, and optionally ``preset``, ``method`` and ``overrides`` (training
    settings by name, as ``finboard train --set`` takes them)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["eval", "train", "finetune_compare"] = Field(description="What the job does.")
    model_id: str = Field(min_length=1, description="A model id from GET /models.")
    task: str | None = Field(
        None, min_length=1, validate_default=True, description="Training kinds: the task."
    )
    tasks: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None, min_length=1, description="eval: the task names (default: every task)."
    )
    preset: str | None = Field(None, min_length=1, description="Training preset, e.g. quick.")
    method: Literal["lora", "qlora", "prompt-tuning"] | None = Field(
        None, description="Fine-tuning method (default: the preset's)."
    )
    overrides: dict[str, Setting] | None = Field(
        None,
        description='Training settings by name, e.g. {"epochs": 2} '
        "(`finboard train --help-settings` explains each).",
    )
    limit: StrictInt | None = Field(None, ge=1, description="eval: only the first N items.")

    @field_validator("task")
    @classmethod
    def _task_for_training(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind in TRAINING_KINDS and value is None:
            raise ValueError(f"a {kind} job needs a task")
        if kind == "eval" and value is not None:
            raise ValueError("an eval job takes `tasks` (a list of task names), not `task`")
        return value

    @field_validator("tasks", "limit")
    @classmethod
    def _eval_only(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and info.data.get("kind") in TRAINING_KINDS:
            raise ValueError(f"`{info.field_name}` is for eval jobs only")
        return value

    @field_validator("preset", "method", "overrides")
    @classmethod
    def _training_only(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and info.data.get("kind") == "eval":
            raise ValueError(f"`{info.field_name}` is for training jobs only")
        return value


class Submitted(BaseModel):
    job_id: int
    state: str
    new_model_id: str | None = Field(description="Training kinds: the fine-tuned model's id.")


class Job(BaseModel):
    id: int
    kind: str
    label: str
    state: str
    phase: str | None = None
    progress: float | None = Field(None, description="The share of the whole job done, 0..1.")
    eta_s: float | None = Field(None, description="Seconds the job has left (estimated).")
    plan: list[Any] = Field(default_factory=list, description="Its phases with estimated seconds.")
    devices: str | None = Field(None, description='What it runs on: "cuda:0,1", "cpu", "cpu x2".')
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    cancel_requested: bool = False
    resumed_from_job: int | None = None


class Cancelled(BaseModel):
    job_id: int
    state: str = Field(description="The job's state after the request.")


class Resources(BaseModel):
    gpu_available: bool
    status: str = Field(description="One line: the GPUs seen, or that there are none.")
    samples: list[dict[str, Any]] = Field(description="One reading per GPU, with CPU and RAM.")


class TaskInfo(BaseModel):
    name: str
    version: int
    kind: str
    primary_metric: str
    description: str = ""


class Comparison(BaseModel):
    base_id: str
    base_name: str
    tuned_id: str
    tuned_name: str
    table: list[dict[str, Any]] = Field(description="One row per task and metric (machine keys).")
    headline: dict[str, Any] | None = Field(description="The gain on the primary metric.")
    facts: dict[str, Any] = Field(description="The fine-tuned model's training record.")
    empty: bool = Field(description="No scores of both models on the same items yet.")


class Health(BaseModel):
    ok: bool


# ---------------------------------------------------------------- plain JSON values


def _scalar(value: Any) -> Any:
    """A numpy scalar as the Python number it holds; anything else unknown as its text."""
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


def plain(value: Any) -> Any:
    """``value`` as plain JSON types: NaN / infinity → None, numpy numbers → Python ones.

    >>> import numpy as np
    >>> plain({"n": np.int64(3), "ci": [float("nan"), np.float32(0.5)]})
    {'n': 3, 'ci': [None, 0.5]}
    """
    return store.finite(json.loads(json.dumps(value, default=_scalar)))


def records(frame: Any) -> list[dict[str, Any]]:
    """A DataFrame as JSON records (NaN and missing values → None)."""
    return store.finite(json.loads(frame.to_json(orient="records", double_precision=15)))


def job_out(row: dict[str, Any]) -> Job:
    """The API's view of a job row (no pid, log or run paths)."""
    keep = {name: row.get(name) for name in Job.model_fields if name != "label"}
    return Job(**plain(keep), label=kinds.label(row["kind"]))


# ---------------------------------------------------------------- submitting a job

# (pattern in the error's message, the request field it is about), first match wins
MESSAGE_FIELDS = (
    (r"Unknown preset|Preset file", ("preset",)),
    (r"\bmethod must|QLoRA needs|prompt-tuning trains", ("method",)),
    (r"\blimit must", ("limit",)),
    (r"already fine-tuned|model_id", ("model_id",)),
    (r"needs a task", ("task",)),
    (r"`tasks`", ("tasks",)),
)


def error_field(exc: Exception, body: JobRequest) -> tuple[str, ...]:
    """The request field a user error is about (``()``: the request as a whole).

    A model error points at ``model_id``, a task or data error at ``task`` / ``tasks``, and a
    config error at the override it names (``'name'`` or ``name must ...``), else by
    ``MESSAGE_FIELDS``.

    >>> body = JobRequest(kind="train", model_id="m", task="t", overrides={"epochs": "x"})
    >>> error_field(ValueError("Bad training config: epochs must be a float, not 'x'"), body)
    ('overrides', 'epochs')
    >>> error_field(RegistryError("Unknown model 'm'"), body)
    ('model_id',)
    >>> error_field(ValueError("Unknown preset 'fast'. Presets: quick"), body)
    ('preset',)
    """
    if isinstance(exc, RegistryError):
        return ("model_id",)
    if isinstance(exc, (TaskSpecError, DatasetImportError)):
        return ("task",) if body.kind in TRAINING_KINDS else ("tasks",)
    message = str(exc)
    for name in body.overrides or {}:
        quoted = re.escape(name)
        if re.search(rf"'{quoted}'|(?<![\w.]){quoted} must\b", message):
            return ("overrides", name)
    return next((loc for pattern, loc in MESSAGE_FIELDS if re.search(pattern, message)), ())


def job_params(body: JobRequest) -> dict[str, Any]:
    """The params ``queue.submit`` takes, built as the CLI builds them."""
    if body.kind == "eval":
        from core.tasks.spec import list_tasks

        tasks = body.tasks or [spec.name for spec in list_tasks()]  # the CLI's default: all
        params: dict[str, Any] = {"model_id": body.model_id, "tasks": tasks}
        if body.limit is not None:
            params["limit"] = body.limit
        return params
    overrides = dict(body.overrides or {})
    if body.method:
        overrides["method"] = body.method
    return {
        "model_id": body.model_id,
        "task": body.task,
        "preset": body.preset,
        "overrides": overrides,
    }


def refused(exc: Exception, loc: tuple[str | int, ...]) -> HTTPException:
    """A 422 in FastAPI's validation shape naming ``loc`` with the error's own message."""
    detail = [{"loc": ["body", *loc], "msg": str(exc), "type": "value_error"}]
    return HTTPException(status_code=422, detail=detail)


def start_worker(job_id: int) -> None:
    """``worker.ensure_worker()``; a worker that cannot start is a 503 (the job stays queued)."""
    try:
        worker.ensure_worker()
    except (RuntimeError, OSError) as exc:
        raise HTTPException(
            status_code=503,
            detail=f"Job {job_id} is queued, but the job worker could not start: {exc}",
        ) from exc


# ---------------------------------------------------------------- per-request dependencies


def open_db() -> Iterator[Database]:
    """The store for one request (``FINBOARD_DB`` or the default), closed afterwards."""
    db = store.connect()
    try:
        yield db
    finally:
        db.close()


def bearer_guard(token: str) -> Callable[..., None]:
    """A dependency refusing (401) a request without ``Authorization: Bearer <token>``."""
    scheme = HTTPBearer(auto_error=False, description="The token `finboard serve` was given.")

    def guard(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(scheme)],
    ) -> None:
        given = credentials.credentials if credentials else None
        if not access.token_matches(given, token):
            raise HTTPException(
                status_code=401,
                detail="Missing or wrong token: send Authorization: Bearer <token>",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return guard


DB = Annotated[Database, Depends(open_db)]
NO_JOB: dict[int | str, dict[str, Any]] = {404: {"description": "No job with this id"}}
api = APIRouter()
public = APIRouter()


# ---------------------------------------------------------------- jobs


@api.post("/jobs", status_code=201, summary="Submit a job", tags=["jobs"])
def submit_job(body: JobRequest, db: DB) -> Submitted:
    """Validate and queue an eval, train or finetune_compare job, then make sure the worker
    runs. A request the store cannot run (unknown model, task, setting ...) is a 422 naming the
    field, and nothing is stored."""
    try:
        job_id = queue.submit(db, body.kind, job_params(body))
    except USER_ERRORS as exc:
        raise refused(exc, error_field(exc, body)) from exc
    job = queue.get(db, job_id)
    start_worker(job_id)
    return Submitted(
        job_id=job_id, state=job["state"], new_model_id=job["params"].get("new_model_id")
    )


@api.get("/jobs", summary="List jobs, newest first", tags=["jobs"])
def list_jobs(db: DB, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[Job]:
    return [job_out(row) for row in queue.list_jobs(db, limit)]


def _job(db: Database, job_id: int) -> dict[str, Any]:
    """The job row, or 404."""
    try:
        return queue.get(db, job_id)
    except JobError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc


@api.get("/jobs/{job_id}", responses=NO_JOB, summary="One job", tags=["jobs"])
def get_job(job_id: int, db: DB) -> Job:
    return job_out(_job(db, job_id))


@api.get(
    "/jobs/{job_id}/progress",
    responses=NO_JOB,
    summary="A training job's progress rows",
    tags=["jobs"],
)
def job_progress(job_id: int, db: DB) -> list[dict[str, Any]]:
    """Train / validation loss, learning rate, tokens/s and ETA by step (over resumed jobs)."""
    _job(db, job_id)
    return plain(queue.training_curve(db, job_id))


@api.post("/jobs/{job_id}/cancel", responses=NO_JOB, summary="Cancel a job", tags=["jobs"])
def cancel_job(job_id: int, db: DB) -> Cancelled:
    """A queued job ends at once; a running one saves a checkpoint and stops (state: running)."""
    _job(db, job_id)
    return Cancelled(job_id=job_id, state=queue.request_cancel(db, job_id))


# ---------------------------------------------------------------- results and catalog


@api.get("/leaderboard", summary="Models ranked by overall score", tags=["results"])
def get_leaderboard(
    db: DB, task: Annotated[list[str] | None, Query(description="Only these tasks.")] = None
) -> list[dict[str, Any]]:
    """Full test-split scores only (``limit`` runs are smoke tests, not ranked), with 95% CIs."""
    from core.analysis.leaderboard import leaderboard

    return records(leaderboard(db, task or None))


@api.get(
    "/compare",
    responses={404: {"description": "Unknown model"}},
    summary="Base vs fine-tuned on the same items",
    tags=["results"],
)
def compare(
    db: DB,
    base: Annotated[str, Query(description="The base model id.")],
    tuned: Annotated[str, Query(description="The fine-tuned model id.")],
) -> Comparison:
    from core.analysis.comparison import build_view
    from core.models.registry import get_model

    try:
        get_model(base, db)
        view = build_view(db, base, tuned)
    except RegistryError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    head = dataclasses.asdict(view.headline) if view.headline else None
    return Comparison(
        base_id=view.base_id,
        base_name=view.base_name,
        tuned_id=view.tuned.id,
        tuned_name=view.tuned_name,
        table=records(view.table),
        headline=plain(head),
        facts=plain(view.facts),
        empty=view.empty,
    )


@api.get("/models", summary="The model registry", tags=["catalog"])
def models(db: DB) -> list[dict[str, Any]]:
    """Base models from the config, then fine-tuned ones from the store."""
    from core.models.registry import entry_summary, list_models

    return plain([entry_summary(entry) for entry in list_models(db)])


@api.get("/tasks", summary="The benchmark tasks", tags=["catalog"])
def tasks() -> list[TaskInfo]:
    from core.tasks.spec import list_tasks

    return [
        TaskInfo(
            name=spec.name,
            version=spec.version,
            kind=spec.kind,
            primary_metric=spec.primary_metric,
            description=spec.description,
        )
        for spec in list_tasks()
    ]


@api.get("/resources", summary="CPU, RAM and GPU now", tags=["monitoring"])
def resources() -> Resources:
    from core import monitoring

    return Resources(
        gpu_available=monitoring.gpu_available(),
        status=monitoring.status_line(),
        samples=plain(monitoring.sample()),
    )


@public.get("/health", summary="Liveness (no token needed)", tags=["service"])
def health() -> Health:
    return Health(ok=True)


# ---------------------------------------------------------------- the schema and its page


@api.get("/openapi.json", include_in_schema=False)
def openapi_json(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@api.get("/docs", include_in_schema=False, response_class=HTMLResponse)
def docs(request: Request) -> HTMLResponse:
    page = docs_page(request.app.openapi())
    return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_POLICY})


# ---------------------------------------------------------------- the app


def _server_error(_request: Request, exc: Exception) -> JSONResponse:
    """A store or config file the server cannot use: 500 with the message that says which."""
    return JSONResponse(status_code=500, content={"detail": str(exc)})


def host_guard(token: str | None) -> Callable[..., Any]:
    """Middleware answering 421 to a request whose ``Host`` this server must not answer.

    Without a token only loopback names (and ``FINBOARD_ALLOWED_HOSTS``) are answered, so a
    web page whose name was rebound to 127.0.0.1 cannot submit jobs from a visitor's browser.
    """

    async def check_host(request: Request, call_next: Callable[..., Any]) -> Any:
        host = request.headers.get("host")
        if not access.host_allowed(host, token):
            detail = (
                f"This API answers requests for this machine only, not for {host!r}; list "
                f"other names in {access.ALLOWED_HOSTS_ENV}"
            )
            return JSONResponse(status_code=421, content={"detail": detail})
        return await call_next(request)

    return check_host


def create_app(token: str | None) -> FastAPI:
    """The API; with ``token``, every endpoint except ``/health`` needs it as a bearer token.

    Every request's ``Host`` must be allowed (``core.access.host_allowed``).
    """
    from importlib.metadata import version

    app = FastAPI(
        title="finboard API",
        version=version("finboard"),
        description="The LLM Finance Leaderboard's job queue and results, as JSON.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served by the routes above, behind the token when there is one
    )
    guards = [Depends(bearer_guard(token))] if token else []
    refusals = {401: {"description": "Missing or wrong bearer token"}} if token else {}
    app.include_router(public)
    app.include_router(api, dependencies=guards, responses=refusals)
    for error in (StoreError, RegistryError, TaskSpecError):
        app.add_exception_handler(error, _server_error)
    app.middleware("http")(host_guard(token))
    return app
