"""Gateway calls are recorded after their answers, in batches, by a thread of the web process:
the request that made the call never waits for the database.

Rows wait in memory for at most `GATEWAY_USAGE_FLUSH_SECONDS` (or until `MAX_BATCH` of them are
waiting), then are written with one insert, and the tokens and costs they used are added to
their API key's and workspace's counters (limits.py). A process that stops normally (SIGTERM to
gunicorn: a worker finishes its requests, then exits) writes what is left on its way out. If the
database refuses a batch, the rows wait for the next try rather than being dropped.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import defaultdict, deque
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import (
    DatabaseError,
    IntegrityError,
    close_old_connections,
    connection,
    transaction,
)

from invocations import limits
from invocations.models import Invocation

logger = logging.getLogger(__name__)
MAX_BATCH = 500
MAX_WAITING = 200_000  # rows kept while the database is away; newer ones are then dropped


class Recorder:
    def __init__(self) -> None:
        self._rows: deque[Invocation] = deque()
        self._wake = threading.Event()
        self._flushing = threading.Lock()
        self._started_in: int | None = None  # the process whose thread is running

    def add(self, row: Invocation, hold: limits.TokenHold | None = None) -> None:
        """Queue a row; `hold`: the tokens its call's admission holds (settled once written)."""
        row.token_hold = hold  # type: ignore[attr-defined]
        self._rows.append(row)
        if self._started_in != os.getpid():  # first row of this (possibly forked) process
            self._start()
        if len(self._rows) >= MAX_BATCH:
            self._wake.set()

    def _start(self) -> None:
        with self._flushing:
            if self._started_in == os.getpid():
                return
            self._started_in = os.getpid()
            threading.Thread(target=self._run, name="usage-recorder", daemon=True).start()
            atexit.register(self.flush_all)

    def _run(self) -> None:
        while True:
            self._wake.wait(settings.GATEWAY_USAGE_FLUSH_SECONDS)
            self._wake.clear()
            try:
                self.flush_all()
            except Exception:  # the recorder must outlive any one bad batch
                logger.exception("Recording gateway usage failed")

    def flush_all(self) -> int:
        """Write every waiting row; returns how many were taken."""
        written = 0
        while self._rows:
            count = self.flush()
            if not count:
                break
            written += count
        return written

    def flush(self) -> int:
        """Write one batch; returns how many rows it took (written, or dropped as unwritable),
        0 when none waits or the database is away (the rows stay)."""
        with self._flushing:
            batch: list[Invocation] = []
            while self._rows and len(batch) < MAX_BATCH:
                batch.append(self._rows.popleft())
            if not batch:
                return 0
            taken = len(batch)
            try:
                close_old_connections()
                _insert(batch)
            except IntegrityError:
                batch = _one_by_one(batch)
            except DatabaseError as exc:
                self._rows.extendleft(reversed(batch))
                while len(self._rows) > MAX_WAITING:
                    self._rows.pop()
                logger.warning(
                    "Gateway usage not written yet (%s rows wait): %s", len(self._rows), exc
                )
                return 0
            _charge(batch)
            return taken

    def waiting(self) -> int:
        return len(self._rows)


def _insert(batch: list[Invocation]) -> None:
    """The rows in one INSERT ... executemany, their values prepared by the fields themselves
    (as bulk_create does, without its per-value expression handling: a third of a gateway call's
    recording cost). The ids are not read back: nothing uses them."""
    fields = [f for f in Invocation._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(Invocation._meta.db_table)} "  # noqa: S608 - names are ours
        f"({', '.join(quote(f.column) for f in fields)}) VALUES ({', '.join(['%s'] * len(fields))})"
    )
    rows = [[f.get_db_prep_save(_value(f, row), connection) for f in fields] for row in batch]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _value(field: Any, row: Invocation) -> Any:
    """The field's value to store: a call's own start time is kept as its `created_at` (the
    field would take the moment of the write)."""
    given = getattr(row, field.attname)
    if getattr(field, "auto_now_add", False) and given is not None:
        return given
    return field.pre_save(row, add=True)


# What a row may point at that can be deleted between the call and its write.
OPTIONAL_LINKS = ("api_key_id", "credential_id", "custom_model_id", "lb_entry_id")


def _one_by_one(batch: list[Invocation]) -> list[Invocation]:
    """A batch the database refused for a broken link: each row on its own, a row whose key,
    credential, model or entry was deleted meanwhile without that link; a row whose workspace
    is gone is dropped. One bad row must not hold the others back for ever."""
    written = []
    for row in batch:
        for attempt in range(2):
            try:
                _insert([row])
            except IntegrityError:
                if attempt == 0:
                    for link in OPTIONAL_LINKS:
                        setattr(row, link, None)
                    continue
                logger.warning("Gateway usage row dropped: workspace %s is gone", row.tenant_id)
            else:
                written.append(row)
            break
    return written


def _charge(batch: list[Invocation]) -> None:
    """The batch's tokens (each call's hold replaced by what it used) and costs, summed per key
    (and workspace), added to the counters."""
    costs: dict[tuple[int, int | None, str], Decimal] = defaultdict(Decimal)
    for row in batch:
        if row.cost:
            costs[(row.tenant_id, row.api_key_id, row.currency)] += row.cost
    limits.settle_many(
        [
            (
                row.api_key_id,
                row.prompt_tokens + row.completion_tokens,
                getattr(row, "token_hold", None),
            )
            for row in batch
        ]
    )
    for (tenant_id, api_key_id, currency), cost in costs.items():
        limits.charge_cost(tenant_id=tenant_id, api_key_id=api_key_id, cost=cost, currency=currency)


recorder = Recorder()
