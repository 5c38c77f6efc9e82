"""Benchmark tasks: specs (``spec``), prompts (``prompts``), writing task files (``authoring``)
and looking at a task's or a file's data before using it (``inspect``)."""
