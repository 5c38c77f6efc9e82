"""Full-load time of every app page in headless Chromium at 1280x800, against a bare Streamlit page.

Starts ``finboard app`` on a store (``--home``: an existing FINBOARD_HOME; default: a fresh one
filled with real runs: the default model evaluated and fine-tuned on a small sentiment task),
and, as the peer measured in the same run, a one-line Streamlit script (``st.title``) served
the same way: the framework's own floor. Each page is loaded ``--rounds`` times in a new
browser page; a load ends when the script has finished and no element is still a loading
placeholder. Screenshots of the last load go to ``--shots``. Prints each page's median and its
ratio to the peer; the last line is a JSON object with ``seconds`` per page, ``peer_s``,
``max_s`` and ``meets_target`` (every page <= 1.5 s).

    python bench/page_load.py [--home DIR] [--rounds 3] [--shots screenshots]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from browser_support import (  # noqa: E402  (shared with the browser tests)
    FINBOARD,
    LOADED,
    free_port,
    launch_chromium,
    running_server,
    store_env,
)

PAGES = [
    "leaderboard",
    "comparison",
    "cost_roi",
    "launch",
    "jobs",
    "compare_methods",
    "playground",
    "gpu_monitor",
    "datasets",
]
TARGET_S = 1.5


def fill_store(env: dict[str, str]) -> None:
    """Real runs: a small sentiment task, then fine-tune and compare the default model on it."""
    task = (
        "from core.tasks.authoring import create_synthetic_task as c; "
        "c('sentiment_small', 'fin_sentiment', 7, {'train': 96, 'validation': 16, 'test': 60})"
    )
    subprocess.run([sys.executable, "-c", task], env=env, check=True, cwd=REPO)
    subprocess.run(
        [
            *FINBOARD,
            "finetune-compare",
            "--model",
            "smollm2-135m-instruct",
            "--task",
            "sentiment_small",
            "--preset",
            "quick",
        ],
        env=env,
        check=True,
        cwd=REPO,
    )


def load_time(context, url: str, shot: Path | None) -> float:
    """Seconds from opening ``url`` in a new tab until the page is fully drawn."""
    page = context.new_page()
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_function(LOADED, timeout=90_000, polling=50)
    seconds = time.perf_counter() - start
    if shot is not None:
        page.screenshot(path=str(shot))
    page.close()
    return seconds


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shots", type=Path, default=REPO / "screenshots")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="page_load_"))
    env = store_env(home)
    if args.home is None:
        fill_store(env)
    args.shots.mkdir(parents=True, exist_ok=True)
    peer_script = home / "peer_page.py"
    peer_script.write_text("import streamlit as st\n\nst.title('A bare Streamlit page')\n")
    app_port, peer_port = free_port(), free_port()
    peer_command = [sys.executable, "-m", "streamlit", "run", str(peer_script)]
    peer_command += ["--server.port", str(peer_port), "--server.headless", "true"]
    peer_command += ["--browser.gatherUsageStats", "false", "--server.address", "127.0.0.1"]
    times: dict[str, list[float]] = {name: [] for name in ["peer", *PAGES]}
    with (
        running_server([*FINBOARD, "app", "--port", str(app_port)], env, app_port) as app_url,
        running_server(peer_command, env, peer_port) as peer_url,
        sync_playwright() as playwright,
    ):
        browser = launch_chromium(playwright)
        # one browser profile, as a user's: the app's static files are cached after a visit
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        load_time(context, f"{app_url}/", None)  # warm the servers
        load_time(context, f"{peer_url}/", None)
        for round_number in range(args.rounds):
            last = round_number == args.rounds - 1
            times["peer"].append(load_time(context, f"{peer_url}/", None))
            for name in PAGES:
                shot = args.shots / f"{name}.png" if last else None
                times[name].append(load_time(context, f"{app_url}/{name}", shot))
        browser.close()
    medians = {name: round(statistics.median(values), 3) for name, values in times.items()}
    peer_s = medians.pop("peer")
    print(f"bare Streamlit page (peer): {peer_s:.2f} s")
    for name, seconds in medians.items():
        print(f"{name:12s} {seconds:5.2f} s  ({seconds / peer_s:4.1f} x the bare page)")
    worst = max(medians.values())
    result = {
        "seconds": medians,
        "peer_s": peer_s,
        "max_s": worst,
        "target_s": TARGET_S,
        "meets_target": worst <= TARGET_S,
        "shots": str(args.shots),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
