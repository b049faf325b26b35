"""The embedded broker of `make run`: kombu's filesystem transport, made safe.

kombu's own filesystem transport opens the message file, then writes it: a reader that
lists the folder in between takes the empty or half-written file, fails on its JSON
(`JSONDecodeError` crashed a worker) and has already removed it (the message is lost).
Here:
  - a writer writes a hidden temporary file and renames it into place (atomic on one
    file system), so a reader only ever sees whole messages;
  - a reader claims a message by renaming it into the processed folder (atomic: of two
    readers, one wins, the other moves on), and a file it cannot decode is put back
    and tried again later, never dropped;
  - a reader walks one folder listing instead of listing the folder for every message
    (20,000 queued messages cost one listing, not 20,000).

Selected with `CELERY_BROKER_URL = "portalfs://"` (registered below).
"""

import logging
import os
import time
import uuid
from collections import deque
from pathlib import Path
from queue import Empty

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

# A file that still does not decode after this long is no message being written: set aside.
UNREADABLE_GRACE_SECONDS = 60.0


class Channel(filesystem.Channel):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._listing: dict[str, deque[str]] = {}

    def _put(self, queue, payload, **kwargs):
        """Write to a temporary name, then rename: the message appears whole or not at all."""
        name = f"{time.time_ns() // 1000:020d}_{uuid.uuid4()}.{queue}.msg"
        folder = self.data_folder_out
        temporary = os.path.join(folder, f".tmp-{uuid.uuid4()}")
        try:
            with open(temporary, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(temporary, os.path.join(folder, name))
        except OSError as exc:
            raise ChannelError(f"Cannot add message {name!r} to {folder!r}") from exc

    def _claim_folder(self) -> str:
        # Claimed files stay on the queue's file system, so the claim is one rename.
        folder = self.processed_folder if self.store_processed else os.path.join(self.data_folder_in, ".claimed")
        os.makedirs(folder, exist_ok=True)
        return folder

    def _candidates(self, queue) -> deque[str]:
        listing = self._listing.get(queue)
        if not listing:
            suffix = f".{queue}.msg"
            names = sorted(n for n in os.listdir(self.data_folder_in) if n.partition(".")[2] == suffix[1:])
            listing = self._listing[queue] = deque(names)
        return listing

    def _get(self, queue):
        """The oldest message of `queue` that this reader manages to claim."""
        listing = self._candidates(queue)
        claimed_folder = self._claim_folder()
        while listing:
            name = listing.popleft()
            source = os.path.join(self.data_folder_in, name)
            claimed = os.path.join(claimed_folder, name)
            try:
                os.rename(source, claimed)
            except FileNotFoundError:
                continue  # another reader took it
            except OSError as exc:
                raise ChannelError(f"Cannot claim message {name!r}") from exc
            try:
                with open(claimed, "rb") as f:
                    payload = loads(bytes_to_str(f.read()))
            except ValueError:
                self._unreadable(claimed, source)
                continue
            if not self.store_processed:
                os.remove(claimed)
            return payload
        raise Empty()

    def _unreadable(self, claimed: str, source: str) -> None:
        """Put back a file that does not decode (a writer without rename may still be at it)."""
        age = time.time() - os.path.getmtime(claimed)
        if age < UNREADABLE_GRACE_SECONDS:
            os.rename(claimed, source)
            return
        aside = claimed + ".unreadable"
        os.rename(claimed, aside)
        logger.error("broker message %s does not decode after %.0f s; set aside as %s", source, age, aside)

    def get_table(self, exchange):
        # The exchange table is rewritten in place by kombu; read it again if caught mid-write.
        for _ in range(50):
            try:
                return super().get_table(exchange)
            except ValueError:
                time.sleep(0.01)
        return super().get_table(exchange)

    def _size(self, queue):
        suffix = f"{queue}.msg"
        return sum(1 for n in os.listdir(self.data_folder_in) if n.partition(".")[2] == suffix)


class Transport(filesystem.Transport):
    Channel = Channel
    global_state = filesystem.virtual.BrokerState()
    driver_name = "portalfs"


def ensure_folders(options: dict) -> None:
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)


TRANSPORT_ALIASES["portalfs"] = "core.broker:Transport"
