"""Shared fixtures: an isolated store and home per test, and a tiny random Llama built here.

The tiny model (2 layers, hidden size 64) and its byte-level BPE tokenizer are built in the
test session, offline, in a second; tests that need a real model use the embedded SmolLM2
and are marked ``integration``.

Hermetic: the suite writes only under temporary directories. The weights cache
(``FINBOARD_CACHE``) and the Hugging Face caches point into one temporary folder for the whole
run, so the embedded model is de-quantized once per run there, never into the user's cache.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SESSION_DIR = Path(tempfile.mkdtemp(prefix="finboard-tests-"))
atexit.register(shutil.rmtree, SESSION_DIR, ignore_errors=True)
os.environ["FINBOARD_CACHE"] = str(SESSION_DIR / "cache")  # one prepared copy per test run
os.environ["HF_HOME"] = str(SESSION_DIR / "huggingface")
# Without FINBOARD_HOME or FINBOARD_DB the store (and its runs and adapters) falls back to the
# repository root; a test that forgets its own store must not leave one in the checkout.
os.environ["FINBOARD_DB"] = str(SESSION_DIR / "home" / "leaderboard.db")

TINY_MODEL_ID = "tiny-llama"
TINY_CHAT_ID = "tiny-llama-chat"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _training_corpus() -> list[str]:
    from core.data import synthetic

    texts = []
    # The finance suite's generators only: the tiny tokenizer's merges (which label words are
    # one token, which several) stay the same when generators are added.
    for generator in ("eps_extraction", "fin_sentiment", "revenue_analysis"):
        for items in synthetic.generate_splits(generator, 7, {"train": 150}).values():
            texts += [item.fields["text"] + " " + item.answer for item in items]
    return texts + [
        "positive neutral negative Positive Neutral Negative Sentiment: EPS: Growth (%):"
    ]


def build_tiny_model(directory: Path, chat: bool = False) -> Path:
    """A 2-layer random Llama (hidden size 64) and a 600-token BPE tokenizer saved in HF layout."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|end|>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(_training_corpus(), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="<|end|>" if chat else "</s>",
        pad_token="<pad>",
    )
    if chat:
        fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,  # bitsandbytes' 4-bit blocks are 64 wide: QLoRA tests need >= 64
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    fast.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_models")
    return {
        TINY_MODEL_ID: build_tiny_model(root / "plain"),
        TINY_CHAT_ID: build_tiny_model(root / "chat", chat=True),
    }


def write_models_config(path: Path, tiny_dirs: dict[str, Path]) -> Path:
    """The real models config plus the tiny test models as `local` entries (the default)."""
    import yaml

    from core import paths

    config = yaml.safe_load(paths.MODELS_CONFIG.read_text())
    config["default_model"] = TINY_MODEL_ID
    for model_id, directory in tiny_dirs.items():
        config["models"].append(
            {
                "id": model_id,
                "display_name": f"Tiny Llama ({model_id})",
                "source": {"kind": "local", "path": str(directory)},
                "params": 40000,
                "license": "test",
                "instruct": "chat" in model_id,
            }
        )
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def finboard_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_dirs: dict[str, Path]
) -> Path:
    """An empty store and runtime folder for this test, with the tiny models registered."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("FINBOARD_HOME", str(home))
    monkeypatch.setenv("FINBOARD_DB", str(home / "leaderboard.db"))
    monkeypatch.setenv(
        "FINBOARD_MODELS_CONFIG",
        str(write_models_config(tmp_path / "models.yaml", tiny_model_dirs)),
    )
    return home


@pytest.fixture
def db(finboard_home: Path):
    from core import store

    database = store.connect()
    yield database
    database.close()


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A per-test weights cache (tests of the cache itself; other tests share the run's cache)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("FINBOARD_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread: tiny models run faster so on a busy 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def build_store(root: Path, tiny_dirs: dict[str, Path], fill) -> Path:
    """A store at ``root/leaderboard.db`` filled by ``fill(db)`` with the tiny models registered.

    Session fixtures build one such store once; tests then work on a copy (``copy_store``).
    """
    from core import store

    path = root / "leaderboard.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FINBOARD_HOME", str(root))
        mp.setenv("FINBOARD_DB", str(path))
        mp.setenv(
            "FINBOARD_MODELS_CONFIG", str(write_models_config(root / "models.yaml", tiny_dirs))
        )
        database = store.connect(path)
        fill(database)
        database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        database.close()
    return path


def store_copy_fixture(source_fixture: str):
    """A fixture giving each test its own copy of the session store ``source_fixture`` builds.

    ``scored_db = store_copy_fixture("filled_store")`` in a test module.
    """

    @pytest.fixture
    def fixture(db, request):
        database = copy_store(db, request.getfixturevalue(source_fixture))
        yield database
        database.close()

    return fixture


def evaluated_store(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_dirs: dict[str, Path],
    tasks: tuple[str, ...],
    limit: int | None = 12,
) -> Path:
    """A store (built once) with both tiny models evaluated on ``tasks`` (real runs)."""
    from core.evaluation.runner import EvalOptions

    def fill(database) -> None:
        for model_id in (TINY_MODEL_ID, TINY_CHAT_ID):
            for task in tasks:
                evaluate_ids(model_id, task, options=EvalOptions(limit=limit), db=database)

    return build_store(tmp_path_factory.mktemp("evaluated_store"), tiny_dirs, fill)


def copy_store(db, source: Path):
    """Replace this test's (empty) store with a copy of ``source``; returns the new connection."""
    import shutil

    from core import paths, store

    db.close()
    shutil.copy(source, paths.db_path())
    return store.connect()


PAGES_DIR = Path(__file__).resolve().parents[1] / "streamlit_app" / "views"


def run_page(name: str, timeout: float = 60, **session: object):
    """Run the app page ``streamlit_app/views/<name>.py`` in AppTest with this session state."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(PAGES_DIR / f"{name}.py"), default_timeout=timeout)
    for key, value in session.items():
        app.session_state[key] = value
    return app.run()


def texts(elements) -> str:
    """The values of AppTest elements as one string, for substring assertions."""
    return "\n".join(str(e.value) for e in elements)


def evaluate_ids(model_id: str, task: str, *, db, options=None, loaded=None, **kwargs):
    """Resolve the ids and load the model as the CLI does, then ``runner.evaluate``."""
    from core.evaluation.runner import EvalOptions, evaluate
    from core.models.loading import load_model
    from core.models.registry import get_model
    from core.tasks.spec import get_task

    options = options or EvalOptions()
    if loaded is None:
        loaded = load_model(get_model(model_id, db), device=options.device, dtype=options.dtype)
    return evaluate(loaded, get_task(task), db=db, options=options, **kwargs)


def svg_charts(at) -> list[str]:
    """The inline SVG charts a page drew (``streamlit_app.charts.show``), as their markup."""
    return [str(m.value) for m in at.markdown if "<svg" in str(m.value)]


def _leaves(node):
    """The elements under an AppTest node, in page order (tabs, columns and expanders walked)."""
    children = getattr(node, "children", None)
    if children is None:
        yield node
        return
    for key in sorted(children):
        yield from _leaves(children[key])


def _html_table(markup: str):
    """A ``common.static_table`` back as a DataFrame of the texts it shows."""
    from html.parser import HTMLParser

    import pandas as pd

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows, self.text = [], None

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                self.rows.append([])
            elif tag in ("th", "td"):
                self.text = ""

        def handle_endtag(self, tag):
            if tag in ("th", "td"):
                self.rows[-1].append(self.text)
                self.text = None

        def handle_data(self, data):
            if self.text is not None:
                self.text += data

    parser = Cells()
    parser.feed(markup)
    header, *rows = parser.rows
    return pd.DataFrame(rows, columns=header)


def tables(at) -> list:
    """Every table a page showed, in page order: ``st.dataframe`` values and
    ``common.static_table`` tables (as DataFrames of their shown texts)."""
    found = []
    for element in _leaves(at.main):
        if element.type in ("dataframe", "arrow_data_frame"):
            found.append(element.value)
        elif element.type == "html" and 'class="fb-table"' in element.proto.body:
            found.append(_html_table(element.proto.body))
    return found


def _html_tiles(markup: str) -> dict[str, dict[str, str | None]]:
    """A ``common.tiles`` row back as label -> {"value", "delta"}."""
    from html.parser import HTMLParser

    class Tiles(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tiles, self.part = [], None

        def handle_starttag(self, tag, attrs):
            classes = (dict(attrs).get("class") or "").split()
            if "fb-tile" in classes:
                self.tiles.append({"label": "", "value": "", "delta": None})
            for part in ("label", "value", "delta"):
                if f"fb-tile-{part}" in classes:
                    self.part = part
                    self.tiles[-1][part] = ""

        def handle_endtag(self, tag):
            self.part = None

        def handle_data(self, data):
            if self.part:
                self.tiles[-1][self.part] += data

    parser = Tiles()
    parser.feed(markup)
    return {t["label"]: {"value": t["value"], "delta": t["delta"]} for t in parser.tiles}


def metrics(at) -> dict[str, dict[str, str | None]]:
    """Every figure a page showed as a metric, label -> {"value", "delta"}: ``st.metric`` s and
    ``common.tiles`` (read back from their HTML)."""
    found = {m.label: {"value": m.value, "delta": m.proto.delta or None} for m in at.metric}
    for element in at.get("html"):
        if 'class="fb-tiles' in element.proto.body:
            found.update(_html_tiles(element.proto.body))
    return found


def code_blocks(at) -> list[str]:
    """The monospace blocks a page showed (``common.code_block``), as plain text."""
    import html
    import re

    found = []
    for element in at.markdown:
        match = re.fullmatch(r'<pre class="fb-code">(.*)</pre>', str(element.value), re.S)
        if match:
            found.append(html.unescape(match.group(1)))
    for element in at.get("html"):  # blocks inside an HTML card (the leaderboard's)
        for block in re.findall(r'<pre class="fb-code">(.*?)</pre>', element.proto.body, re.S):
            found.append(html.unescape(block))
    return found


@pytest.fixture
def jobs_env(finboard_home, monkeypatch, tmp_path):
    """The test's store, with the env its worker and job subprocesses need; cleans up after."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # torch threads fight for 2 busy cores otherwise
    monkeypatch.setenv("FINBOARD_CACHE", str(tmp_path / "cache"))
    yield finboard_home
    from jobs_support import kill_group

    from core import store
    from core.jobs import worker

    kill_group(worker.running_worker_pid())  # first the worker, so it starts nothing more
    database = store.connect()
    for (pid,) in database.execute("select pid from jobs where pid is not null").fetchall():
        kill_group(pid)
    database.close()
