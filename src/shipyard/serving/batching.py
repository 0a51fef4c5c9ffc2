"""Adaptive micro-batching: requests that arrive together are scored in one model call.

Off by default (``--batch-max-size``, ``--batch-timeout-ms``). The first waiting
request opens a batch; it closes when it holds ``max_rows`` rows or ``timeout``
seconds have passed, and is scored in a worker thread, so the event loop keeps taking
requests meanwhile: under load the next batch fills while this one runs, and with one
request at a time the cost is at most ``timeout``. Requests for different served
versions (a swap in the middle) are scored apart. If a batched call fails, each
request is scored alone, so only a request the model cannot take gets the error.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from shipyard.serving.models import ServedModel


@dataclass
class _Pending:
    served: ServedModel
    frame: pd.DataFrame
    want_proba: bool
    future: asyncio.Future[tuple[np.ndarray, np.ndarray | None]]


def score(
    served: ServedModel, frame: pd.DataFrame, want_proba: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions (and probabilities when wanted) for checked rows."""
    model = served.model
    predictions = model.predict_checked(frame)
    proba = model.predict_proba_checked(frame) if want_proba else None
    return predictions, proba


class MicroBatcher:
    """Collects requests into batches and scores each batch once.

    Args:
        max_rows: rows that close a batch.
        timeout: seconds the first request of a batch waits for others at most.
    """

    def __init__(self, *, max_rows: int, timeout: float) -> None:
        self.max_rows = max_rows
        self.timeout = timeout
        self.batches = 0
        self.rows = 0
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None

    async def score(
        self, served: ServedModel, frame: pd.DataFrame, want_proba: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._run(self._queue))
        future: asyncio.Future[tuple[np.ndarray, np.ndarray | None]] = loop.create_future()
        await self._queue.put(_Pending(served, frame, want_proba, future))
        return await future

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, queue: asyncio.Queue[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            rows = len(batch[0].frame)
            deadline = loop.time() + self.timeout
            while rows < self.max_rows:
                if queue.empty():
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(queue.get(), remaining)
                    except TimeoutError:
                        break
                else:
                    item = queue.get_nowait()
                batch.append(item)
                rows += len(item.frame)
            groups: dict[int, list[_Pending]] = {}
            for item in batch:
                groups.setdefault(id(item.served), []).append(item)
            for items in groups.values():
                await self._score_group(items)

    async def _score_group(self, items: list[_Pending]) -> None:
        import numpy as np
        import pandas as pd

        served, want = items[0].served, any(i.want_proba for i in items)
        frame = items[0].frame if len(items) == 1 else pd.concat(
            [i.frame for i in items], ignore_index=True
        )  # fmt: skip
        try:
            predictions, proba = await asyncio.to_thread(score, served, frame, want)
        except (ValueError, TypeError):
            for item in items:  # alone, so only the request the model refuses fails
                try:
                    result = await asyncio.to_thread(score, served, item.frame, item.want_proba)
                except (ValueError, TypeError) as exc:
                    if not item.future.done():
                        item.future.set_exception(exc)
                else:
                    if not item.future.done():
                        item.future.set_result(result)
            return
        self.batches += 1
        self.rows += len(frame)
        offsets = np.cumsum([0] + [len(i.frame) for i in items])
        for item, start, end in zip(items, offsets[:-1], offsets[1:], strict=True):
            if item.future.done():  # the request was cancelled (client went away)
                continue
            part = proba[start:end] if (proba is not None and item.want_proba) else None
            item.future.set_result((predictions[start:end], part))
