"""How much the uploads being checked may unpack at once: one account per server (shared by
all its requests), guarded by a lock. Each upload reserves the bytes and entries it writes,
as it writes them, against three budgets (its own, its uploader's, the server's), and gives
them back when its scratch folder is removed; an upload that would pass a budget stops there
with one sentence. Sizes a zip declares are never trusted: what is counted is what is written.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

from neuroptimus.optimization.errors import UserError
from neuroptimus.storage.catalog.errors import size_text


@dataclass(frozen=True)
class Refusal:
    """Which budget an upload ran out of: its HTTP status and one sentence."""

    status: int
    detail: str


def refusal(budget: str, limit: int, what: str) -> Refusal:
    """The answer to an upload that would pass ``budget`` (a field of ``Budgets``)."""
    if budget == "upload_bytes":
        return Refusal(413, f"{what} unpacks to more than {size_text(limit)}, the most one "
                            "upload may unpack on this catalog.")  # fmt: skip
    if budget == "upload_entries":
        return Refusal(413, f"{what} has more than {limit} entries, the most one upload may "
                            "unpack on this catalog.")  # fmt: skip
    if budget == "user_bytes":
        return Refusal(413, f"{what} would take your runs past {size_text(limit)} unpacked, "
                            "your quota on this catalog: delete runs you no longer need."
                       )  # fmt: skip
    if budget == "user_entries":
        return Refusal(429, f"your uploads being checked unpack more than {limit} entries at "
                            "once: wait for one to finish, then send this one again.")  # fmt: skip
    return Refusal(503, "the catalog is checking too many uploads at once: send this one "
                        "again in a minute.")  # fmt: skip


class UnpackingBudgetError(UserError):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.detail)
        self.status, self.detail = refusal.status, refusal.detail


@dataclass(frozen=True)
class Budgets:
    """The limits: per upload, per user (``user_bytes`` counts the bytes of the user's kept
    runs too), and for the whole server."""

    upload_bytes: int
    upload_entries: int
    user_bytes: int
    user_entries: int
    server_bytes: int
    server_entries: int


class UnpackingAccount:
    """The bytes and entries every upload being checked has unpacked, by user."""

    def __init__(self, budgets: Budgets) -> None:
        self.budgets = budgets
        self._lock = threading.Lock()
        self._bytes: Counter[int] = Counter()  # by user id
        self._entries: Counter[int] = Counter()
        self.peak_bytes = 0  # the most ever reserved at once (for tests and operators)

    def open(self, user_id: int, kept_bytes: int) -> Reservation:
        """A reservation for one upload of ``user_id``, whose kept runs hold ``kept_bytes``
        unpacked."""
        return Reservation(self, user_id, kept_bytes)

    def in_use(self) -> tuple[int, int]:
        """Bytes and entries reserved by all uploads now (0, 0 when none is being checked)."""
        with self._lock:
            return sum(self._bytes.values()), sum(self._entries.values())

    def _take(self, booking: Reservation, size: int, entries: int) -> None:
        b = self.budgets
        with self._lock:
            user_bytes = self._bytes[booking.user_id] + size
            user_entries = self._entries[booking.user_id] + entries
            checks = (
                (booking.bytes + size > b.upload_bytes, "upload_bytes", b.upload_bytes),
                (booking.entries + entries > b.upload_entries, "upload_entries", b.upload_entries),
                (booking.kept + user_bytes > b.user_bytes, "user_bytes", b.user_bytes),
                (user_entries > b.user_entries, "user_entries", b.user_entries),
                (sum(self._bytes.values()) + size > b.server_bytes, "server_bytes", b.server_bytes),
                (sum(self._entries.values()) + entries > b.server_entries, "server_entries",
                 b.server_entries),
            )  # fmt: skip
            for over, name, limit in checks:
                if over:
                    raise UnpackingBudgetError(refusal(name, limit, booking.what))
            self._bytes[booking.user_id] = user_bytes
            self.peak_bytes = max(self.peak_bytes, sum(self._bytes.values()))
            self._entries[booking.user_id] = user_entries
            booking.bytes += size
            booking.entries += entries

    def _give_back(self, booking: Reservation) -> None:
        with self._lock:
            self._bytes[booking.user_id] -= booking.bytes
            self._entries[booking.user_id] -= booking.entries
            for counter in (self._bytes, self._entries):
                if counter[booking.user_id] <= 0:
                    del counter[booking.user_id]
            booking.bytes = booking.entries = 0


class Reservation:
    """What one upload has unpacked so far; ``release`` (or leaving its ``with``) gives it
    back once its scratch folder is gone."""

    def __init__(self, account: UnpackingAccount, user_id: int, kept: int) -> None:
        self.account, self.user_id, self.kept = account, user_id, kept
        self.what = "the upload"  # the file being unpacked, for messages
        self.bytes = 0
        self.entries = 0

    def entry(self) -> None:
        """One more entry (a file or a folder) is about to be written."""
        self.account._take(self, 0, 1)

    def write(self, size: int) -> None:
        """``size`` more bytes are about to be written."""
        self.account._take(self, size, 0)

    def release(self) -> None:
        self.account._give_back(self)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()
