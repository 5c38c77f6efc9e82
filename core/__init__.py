"""LLM Finance Leaderboard core: registry, models, tasks, evaluation, storage. No Streamlit here."""

__version__ = "0.1.0"
