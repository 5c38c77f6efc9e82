"""The playground: ask two models the same question and see both answers side by side.

    >>> client = PlaygroundClient()                                       # doctest: +SKIP
    >>> client.ask("smollm2-135m-instruct", "fin_sentiment", "Shares fell 8% after a profit warning.")
    ... # doctest: +SKIP
    {'model_id': ..., 'answer': 'negative', 'probabilities': {...}, 'latency_ms': 41.0, ...}

Models are loaded and run in a **model server process** (``python -m
core.workflows.playground SOCKET``), never in a page's script thread: the first question to a
model loads it (about a second for the embedded ones on CPU, from the weights cache), later
questions take tens of milliseconds. The server keeps the last ``KEEP_MODELS`` models in
memory, serves one store (``FINBOARD_DB``), listens on a Unix socket only its user can open
(with an HMAC key, ``multiprocessing.connection``), and exits after ``IDLE_EXIT_S`` without a
question. ``PlaygroundClient`` starts it on first use.

An answer is computed exactly as the evaluator scores an item: the task's prompt (chat
template, instruction, few-shot examples), label log-likelihoods with the task's calibration
for choice tasks, greedy generation cut at the stop sequence and the numeric parser for
generation tasks.
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Listener
from pathlib import Path
from typing import Any

from core import paths

KEEP_MODELS = 2
IDLE_EXIT_S = 900.0
START_TIMEOUT_S = 60.0
MAX_CHARS = 4000


@dataclass(frozen=True)
class Answer:
    model_id: str
    task: str
    answer: str | None  # the label, or the parsed number / text
    output: str  # the generated text, or the label probabilities in words
    probabilities: dict[str, float] | None  # choice tasks: each label's (calibrated) probability
    calibrated: bool
    latency_ms: float
    load_ms: float  # 0 when the model was in memory already


# ---------------------------------------------------------------- answering (in the server)


def answer(loaded: Any, spec: Any, text: str, load_ms: float = 0.0) -> Answer:
    """The model's answer to ``text`` under task ``spec``, as the evaluator would score it."""
    from core.data.items import Item
    from core.evaluation import runner
    from core.evaluation.hf import HFLanguageModel
    from core.evaluation.parsing import parse_number
    from core.tasks.prompts import choice_continuations, pick_shots
    from core.tasks.spec import load_split

    entry = loaded.entry
    field = "prompt" if spec.source.get("type") == "file" and spec.is_generation else "text"
    item = Item("playground", {field: text}, spec.labels[0] if spec.labels else "")
    shots = pick_shots(spec, load_split(spec, "train").items, 0, spec.num_shots)
    prompts = runner.build_prompts(spec, [item], loaded.tokenizer, entry.instruct, shots)
    lm = HFLanguageModel(
        loaded.model, loaded.tokenizer, loaded.device, 1, prefix_embeds=loaded.prefix_embeds
    )
    start = time.perf_counter()
    if spec.is_generation:
        output = lm.generate(prompts, spec.stop, spec.max_new_tokens)[0]
        number = parse_number(output) if spec.kind == "numeric" else None
        parsed = (
            (repr(number) if number is not None else None) if spec.kind == "numeric" else output
        )
        seconds = time.perf_counter() - start
        return Answer(entry.id, spec.name, parsed, output, None, False, 1000 * seconds, load_ms)
    forms = choice_continuations(spec, loaded.tokenizer, entry.instruct)
    extra = runner.content_free_prompts(spec, loaded.tokenizer, entry.instruct, shots)
    scored = runner.label_logprobs(lm, prompts + extra, forms, on_batch=lambda *_: None)
    row = runner.calibrate(scored[:1], scored[1:])[0] if extra else scored[0]
    seconds = time.perf_counter() - start
    total = runner._logsumexp(row)
    probabilities = {label: math.exp(v - total) for label, v in zip(spec.labels, row)}
    best = max(probabilities, key=probabilities.__getitem__)
    words = ", ".join(f"{label} {p:.0%}" for label, p in probabilities.items())
    return Answer(
        entry.id, spec.name, best, words, probabilities, bool(extra), 1000 * seconds, load_ms
    )


class ModelShelf:
    """The last ``size`` models used, loaded once each (least recently used goes first)."""

    def __init__(self, size: int = KEEP_MODELS) -> None:
        self.size = size
        self.models: OrderedDict[str, Any] = OrderedDict()

    def get(self, model_id: str) -> tuple[Any, float]:
        """(the loaded model, milliseconds spent loading it now: 0 when it was on the shelf)."""
        from core import store
        from core.models.loading import load_model
        from core.models.registry import get_model

        if model_id in self.models:
            self.models.move_to_end(model_id)
            return self.models[model_id], 0.0
        start = time.perf_counter()
        db = store.connect()
        try:
            entry = get_model(model_id, db)
        finally:
            db.close()
        while len(self.models) >= self.size:
            self.models.popitem(last=False)
        loaded = load_model(entry)
        self.models[model_id] = loaded
        return loaded, 1000 * (time.perf_counter() - start)


def handle(shelf: ModelShelf, request: dict[str, Any]) -> dict[str, Any]:
    """One request: ``{"model_id", "task", "text"}`` -> an Answer as a dict, or an error."""
    from core.tasks.spec import get_task

    try:
        text = str(request.get("text") or "").strip()
        if not text:
            raise ValueError("Type a text for the models to answer.")
        if len(text) > MAX_CHARS:
            raise ValueError(f"The text is {len(text)} characters long; the limit is {MAX_CHARS}.")
        spec = get_task(str(request["task"]))
        loaded, load_ms = shelf.get(str(request["model_id"]))
        return {"ok": True, **asdict(answer(loaded, spec, text, load_ms))}
    except Exception as exc:  # a user's error or a broken model: said, never a dead server
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


# ---------------------------------------------------------------- the server process


def _key_file(socket_path: Path) -> Path:
    return socket_path.with_suffix(".key")


def serve(socket_path: Path, idle_exit_s: float = IDLE_EXIT_S) -> None:
    """Answer requests on ``socket_path`` until idle for ``idle_exit_s``."""
    key = _key_file(socket_path).read_bytes()
    socket_path.unlink(missing_ok=True)
    shelf = ModelShelf()
    listener = Listener(str(socket_path), family="AF_UNIX", authkey=key)
    os.chmod(socket_path, 0o600)
    last_used = [time.monotonic()]
    busy = threading.Event()

    def exit_when_idle() -> None:
        while True:
            time.sleep(min(5.0, idle_exit_s))
            if not busy.is_set() and time.monotonic() - last_used[0] > idle_exit_s:
                socket_path.unlink(missing_ok=True)
                os._exit(0)  # nothing to save: the models are only a cache of loaded weights

    threading.Thread(target=exit_when_idle, daemon=True).start()
    try:
        while True:
            try:
                connection = listener.accept()
            except AuthenticationError:  # a client without the key: refused, the server goes on
                continue
            busy.set()
            with connection:
                while True:
                    try:
                        request = connection.recv()
                    except EOFError:
                        break
                    if request.get("stop"):
                        connection.send({"ok": True, "stopped": True})
                        return
                    connection.send(handle(shelf, request))
            last_used[0] = time.monotonic()
            busy.clear()
    finally:
        socket_path.unlink(missing_ok=True)


# ---------------------------------------------------------------- the client (in the page)


def socket_path() -> Path:
    """One server per store: a short socket name in the temp folder, from the store's path."""
    digest = hashlib.sha256(str(paths.db_path().resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"finboard-play-{os.getuid()}-{digest}.sock"


class PlaygroundError(RuntimeError):
    """The model server could not answer; the message says why."""


class PlaygroundClient:
    """Talks to this store's model server, starting it when none answers."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or socket_path()

    def _key(self) -> bytes:
        key_file = _key_file(self.path)
        if not key_file.is_file():
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(32))
        return key_file.read_bytes()

    def _connect(self) -> Any:
        return Client(str(self.path), family="AF_UNIX", authkey=self._key())

    def start(self) -> None:
        """Start the server process (detached) and wait until it listens."""
        from core.jobs.worker import spawn, worker_env

        self._key()
        log = paths.runs_dir() / "playground.log"
        spawn(
            [sys.executable, "-m", "core.workflows.playground", str(self.path)], log, worker_env()
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                self._connect().close()
                return
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.1)
        raise PlaygroundError(f"The model server did not start; see {log}")

    def stop(self) -> bool:
        """Ask a running server to exit; False when none was running."""
        try:
            connection = self._connect()
        except (FileNotFoundError, ConnectionRefusedError):
            return False
        with connection:
            connection.send({"stop": True})
            return bool(connection.recv().get("stopped"))

    def ask(self, model_id: str, task: str, text: str) -> dict[str, Any]:
        """The model's answer (``Answer`` as a dict with ``ok``), starting the server if needed."""
        try:
            connection = self._connect()
        except (FileNotFoundError, ConnectionRefusedError):
            self.start()
            connection = self._connect()
        with connection:
            connection.send({"model_id": model_id, "task": task, "text": text})
            return connection.recv()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m core.workflows.playground SOCKET_PATH", file=sys.stderr)
        return 2
    serve(Path(args[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
