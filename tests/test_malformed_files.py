"""56 malformed or tricky dataset files (``malformed_cases``) through ``create_task_from_file``.

Each is rejected with a message naming the file, and the row and field where they apply, and
leaves every byte of the store (the SQLite file and everything under the home folder)
unchanged; or it is accepted and usable: every split has items and they add up to the file.
"""

from __future__ import annotations

import pytest
from malformed_cases import CASES, Accepted, import_case, rejection_problems, snapshot

from core.data.importer import DatasetImportError
from core.tasks import spec


def test_there_are_at_least_fifty_cases():
    assert len(CASES) >= 50 and len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_malformed_file(case, db, finboard_home, tmp_path):
    folder = tmp_path / "uploads"
    folder.mkdir()
    db.execute("select count(*) from scores").fetchone()  # the store exists and is open
    before = snapshot(finboard_home)
    if isinstance(case.expect, Accepted):
        task = import_case(case, folder)
        sizes = [len(spec.load_split(task, name).items) for name in spec.SPLIT_NAMES]
        assert all(sizes) and sum(sizes) == case.expect.items
        assert task.name in [s.name for s in spec.list_tasks()]
        return
    with pytest.raises((DatasetImportError, spec.TaskSpecError, ValueError)) as caught:
        import_case(case, folder)
    assert rejection_problems(case, caught.value) == []
    assert snapshot(finboard_home) == before, "a rejected file changed the store"
