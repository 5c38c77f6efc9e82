"""Recipes that use training and evaluation together (the only place that sees both).

- ``finetune_compare``: score the base, fine-tune, check the adapter, score the fine-tune on the
  same items, store the pair.
- ``demo``: the jobs that fill an empty leaderboard with real runs.
- ``hooks``: the one object a recipe reports to (progress, phases, stop requests, energy).
"""
