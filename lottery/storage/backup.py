"""Backups of the embedded engine while it runs: its `secantusAdmin.backupArchive` command
checkpoints the data and tars it into one file, consistent as of that checkpoint. Restore with
`secantus-restore-archive --archive FILE --target-dir NEW_DIR` and start the server on NEW_DIR.
Real MongoDB has no such command: use mongodump or the provider's snapshots there."""
import logging
import os
from datetime import datetime

from pymongo.asynchronous.mongo_client import AsyncMongoClient
from pymongo.errors import OperationFailure

from lottery import clock
from lottery.errors import BackupUnsupported

log = logging.getLogger(__name__)

COMMAND_NOT_FOUND = 59
ILLEGAL_OPERATION = 20  # the embedded engine's answer when it runs in memory: nothing on disk to archive


class Backups:
    """Archives of the database into `folder` (made if missing), named by the time they were taken."""

    def __init__(self, client: AsyncMongoClient, folder: str) -> None:
        self.client = client
        self.folder = os.path.abspath(folder)

    def path_for(self, at: datetime) -> str:
        return os.path.join(self.folder, f"gift-lottery-{at:%Y%m%dT%H%M%S%fZ}.tar.gz")

    async def take(self) -> dict:
        """Archive the database now -> `{path, size_bytes, taken_at}`."""
        now = clock.utcnow()
        os.makedirs(self.folder, exist_ok=True)
        try:
            answer = await self.client.admin.command("secantusAdmin.backupArchive", outputPath=self.path_for(now))
        except OperationFailure as exc:
            if exc.code == COMMAND_NOT_FOUND:
                raise BackupUnsupported() from None
            if exc.code == ILLEGAL_OPERATION:
                raise BackupUnsupported("这个数据库只在内存中，没有可备份的数据文件") from None
            raise
        log.info("backup taken: %s (%d bytes)", answer["path"], answer["sizeBytes"])
        return {"path": answer["path"], "size_bytes": int(answer["sizeBytes"]), "taken_at": clock.iso(now)}
