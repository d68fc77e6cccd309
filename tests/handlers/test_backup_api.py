"""POST /api/admin/backup on a database it cannot archive answers 501 backup_unsupported, never a
500: the embedded engine in memory (as the tests run it) has no data files to archive. Backups
of an engine on disk, and their restore: tests/lottery/test_backup.py."""
import pytest


@pytest.fixture
def app(build_app, tmp_path):
    return build_app(backup_dir=str(tmp_path / "backups"))


@pytest.mark.gen_test
async def test_a_backup_of_an_engine_in_memory_is_unsupported_not_a_server_error(api, tmp_path):
    status, answer = await api.request("POST", "/api/admin/backup", {}, token=api.admin_token)
    assert status == 501 and answer["error"]["code"] == "backup_unsupported", answer
    assert not list((tmp_path / "backups").iterdir())
