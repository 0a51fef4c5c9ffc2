"""Batch scoring: a CSV or Parquet file of any size in, one row of predictions per input row out.

:func:`score_file` reads the input in chunks (bounded memory), checks its columns
against the model's signature before scoring anything, scores each chunk and appends
it to a temporary file next to the output, which is renamed into place only when every
row is scored: a failure leaves no output and no temporary file behind.

Output columns: the id column (the one named, else the first column called ``id``
whatever its case, else ``row``: the 0-based position of the row in the input),
``prediction``, ``proba_<class>`` per class for classifiers that give probabilities,
``model`` (``churn@3``) and ``model_version``.

With ``scheduler=`` (a Dask scheduler address or a ``distributed.Client``) the
partitions are scored on the cluster's workers. Limits of that mode: the workers must
be able to read the input path (a shared filesystem) and import shipyard; the model is
sent to them pickled (sklearn, XGBoost and LightGBM models are picklable; a model that
is not is refused before anything runs), once per worker; partitions hold about
``chunk_rows`` rows, cut at Parquet row groups (a row group is never split) or at CSV
blocks sized from the first lines, and a ``.csv.gz`` input is one partition (gzip
cannot be split); Dask infers CSV column types from the start of the file, so a column
whose type changes further down fails there (convert the file to Parquet). Scored
partitions (ids and predictions, not the
inputs) wait in the workers' memory until the client writes them, in order, to the one
output file, so the output needs no shared filesystem.

Example:
    >>> report = score_file(model, "customers.parquet", "scores.parquet",
    ...                     model_ref="churn@3", version=3)  # doctest: +SKIP
    >>> report.rows, report.output  # doctest: +SKIP
    (1000000, PosixPath('scores.parquet'))
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import itertools
import logging
import math
import os
import pickle
import time
import uuid
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from shipyard.core.errors import InvalidInputError, InvalidStateError, SchemaMismatchError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from shipyard.registry.model_folder import LoadedModel

logger = logging.getLogger(__name__)

ROW_COLUMN = "row"
PREDICTION_COLUMN = "prediction"
MODEL_COLUMN = "model"
VERSION_COLUMN = "model_version"
PROBA_PREFIX = "proba_"
INPUT_FORMATS = {".csv": "csv", ".csv.gz": "csv.gz", ".parquet": "parquet"}
OUTPUT_FORMATS = INPUT_FORMATS

Progress = Callable[[int, int | None], None]
"""``progress(rows_done, total_rows)``; ``total_rows`` is None when unknown (CSV)."""


@dataclass(frozen=True)
class BatchReport:
    """What :func:`score_file` did.

    Attributes:
        rows: Rows scored (and written).
        seconds: Wall time, reading and writing included.
        output: The output file.
        model: The model reference written in the ``model`` column (``churn@3``).
        version: The model version.
        chunks: Chunks (or Dask partitions) scored.
        columns: The output's columns, in order.
    """

    rows: int
    seconds: float
    output: Path
    model: str
    version: int
    chunks: int
    columns: tuple[str, ...]

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of all fields, ``rows_per_second`` included."""
        return {
            "rows": self.rows,
            "seconds": self.seconds,
            "rows_per_second": self.rows_per_second,
            "output": str(self.output),
            "model": self.model,
            "version": self.version,
            "chunks": self.chunks,
            "columns": list(self.columns),
        }


# --------------------------------------------------------------------------------------
# files


def _format_of(path: Path, role: str) -> str:
    name = path.name.lower()
    for suffix in sorted(INPUT_FORMATS, key=len, reverse=True):  # .csv.gz before .csv
        if name.endswith(suffix):
            return INPUT_FORMATS[suffix]
    raise InvalidInputError(
        f"the {role} file {path} has an unknown extension; use .parquet, .csv or .csv.gz "
        f"(rename the file, or convert it)",
        details={"file": str(path)},
    )


@dataclass(frozen=True)
class _Input:
    """The input file: its format, columns and (Parquet) row count."""

    path: Path
    format: str
    columns: tuple[str, ...]
    total: int | None

    @classmethod
    def open(cls, path: Path) -> _Input:
        fmt = _format_of(path, "input")
        if not path.exists():
            raise InvalidInputError(
                f"the input file {path} does not exist; check the path (relative paths start "
                f"in {Path.cwd()})",
                details={"file": str(path)},
            )
        if not path.is_file():
            raise InvalidInputError(
                f"the input {path} is not a file; pass one .parquet, .csv or .csv.gz file",
                details={"file": str(path)},
            )
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            try:
                with pq.ParquetFile(path) as pf:
                    names = tuple(pf.schema_arrow.names)
                    total = pf.metadata.num_rows
            except (pa.ArrowException, OSError) as exc:
                raise _unreadable(path, "Parquet", exc) from None
            return cls(path, fmt, names, total)
        import pandas as pd

        try:
            header = pd.read_csv(path, nrows=0)
        except pd.errors.EmptyDataError:
            raise InvalidInputError(
                f"the input file {path} is empty; it needs a header line and rows",
                details={"file": str(path)},
            ) from None
        except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
            raise _unreadable(path, "CSV", exc) from None
        return cls(path, fmt, tuple(map(str, header.columns)), None)

    def chunks(
        self, columns: list[str] | None, chunk_rows: int, text_columns: Sequence[str]
    ) -> Generator[pd.DataFrame, None, None]:
        """The rows, ``chunk_rows`` at a time, with only ``columns`` (None: all)."""
        if self.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            try:
                with pq.ParquetFile(self.path) as pf:
                    for batch in pf.iter_batches(batch_size=chunk_rows, columns=columns):
                        yield batch.to_pandas()
            except (pa.ArrowException, OSError) as exc:
                raise _unreadable(self.path, "Parquet", exc) from None
            return
        import pandas as pd

        dtype = {c: str for c in text_columns}
        try:
            with pd.read_csv(
                self.path, chunksize=chunk_rows, usecols=columns, dtype=dtype or None
            ) as reader:
                yield from reader
        except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
            raise _unreadable(self.path, "CSV", exc) from None


def _unreadable(path: Path, kind: str, exc: BaseException) -> InvalidInputError:
    return InvalidInputError(
        f"could not read {path} as {kind} ({type(exc).__name__}: {exc}); check that the file "
        "is complete and that its extension matches its content",
        details={"file": str(path)},
    )


class _Output:
    """Appends scored chunks to a file: Parquet (one schema, set by the first chunk) or CSV
    (the header once)."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path
        self.format = fmt
        self._writer: Any = None
        self._schema: pa.Schema | None = None
        self._handle: IO[str] | None = None

    def write(self, frame: pd.DataFrame) -> None:
        if self.format == "parquet":
            self._write_parquet(frame)
            return
        first = self._handle is None
        if self._handle is None:
            if self.format == "csv.gz":  # closed by close()
                self._handle = gzip.open(self.path, "wt", encoding="utf-8", newline="")  # noqa: SIM115
            else:
                self._handle = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        frame.to_csv(self._handle, header=first, index=False, lineterminator="\n")

    def _write_parquet(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
        if self._schema is None:
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self.path, self._schema)
        elif not table.schema.equals(self._schema):
            try:
                table = table.cast(self._schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                changed = [
                    f"{f.name} ({self._schema.field(f.name).type} -> {f.type})"
                    for f in table.schema
                    if f.name in self._schema.names and f.type != self._schema.field(f.name).type
                ]
                raise InvalidInputError(
                    f"output column(s) {', '.join(changed)} change type from one chunk of the "
                    "input to the next; give the id column one type throughout (or write CSV)",
                    details={"columns": changed},
                ) from None
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None


# --------------------------------------------------------------------------------------
# scoring


@dataclass(frozen=True)
class _Scorer:
    """Turns one chunk of input rows into output rows (picklable: it goes to Dask workers)."""

    source: str
    id_column: str | None
    model_ref: str
    version: int
    labels: tuple[Any, ...] | None = None
    drop_id: bool = False  # the id column is not a model input

    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        """What the model sees: ``frame`` without the id column unless the model takes it."""
        if self.drop_id and self.id_column is not None:
            return frame.drop(columns=[self.id_column])
        return frame

    def columns(self) -> tuple[str, ...]:
        head = (self.id_column or ROW_COLUMN, PREDICTION_COLUMN)
        probas = tuple(f"{PROBA_PREFIX}{label}" for label in self.labels or ())
        return (*head, *probas, MODEL_COLUMN, VERSION_COLUMN)

    def score(self, model: LoadedModel, frame: pd.DataFrame, where: str) -> pd.DataFrame:
        """Output rows for ``frame``; ``row`` numbers start at 0 (the caller shifts them)."""
        import numpy as np
        import pandas as pd

        frame = frame.reset_index(drop=True)
        n = len(frame)
        features = self.features(frame)
        try:
            predictions = np.asarray(model.predict(features))
            proba = None if self.labels is None else np.asarray(model.predict_proba(features))
        except SchemaMismatchError as exc:
            raise SchemaMismatchError(
                f"{where} of {self.source}: {exc.message}",
                details={**exc.details, "file": self.source, "where": where},
            ) from None
        if predictions.ndim == 2 and predictions.shape[1] == 1:
            predictions = predictions.ravel()
        if predictions.shape != (n,):
            raise InvalidStateError(
                f"{self.model_ref} gave predictions of shape {predictions.shape} for {n} rows; "
                "batch scoring writes one prediction per row",
                details={"shape": list(predictions.shape)},
            )
        out: dict[str, Any] = {
            self.id_column or ROW_COLUMN: (
                frame[self.id_column] if self.id_column else np.arange(n, dtype=np.int64)
            ),
            PREDICTION_COLUMN: predictions,
        }
        if proba is not None and self.labels is not None:
            for i, label in enumerate(self.labels):
                out[f"{PROBA_PREFIX}{label}"] = proba[:, i]
        out[MODEL_COLUMN] = np.full(n, self.model_ref, dtype=object)
        out[VERSION_COLUMN] = np.full(n, self.version, dtype=np.int64)
        return pd.DataFrame(out, index=pd.RangeIndex(n))


def _score_partition(
    frame: pd.DataFrame, model: LoadedModel, scorer: _Scorer, partition_info: Any = None
) -> pd.DataFrame:
    """On a Dask worker: one partition's output rows."""
    number = partition_info.get("number") if isinstance(partition_info, dict) else None
    return scorer.score(model, frame, f"partition {number}" if number is not None else "a part")


def _id_column(columns: Sequence[str], wanted: str | None, path: Path) -> str | None:
    if wanted is not None:
        if wanted not in columns:
            shown = ", ".join(columns[:20]) + (", ..." if len(columns) > 20 else "")
            raise InvalidInputError(
                f"the id column {wanted!r} is not in {path}; its columns are: {shown}",
                details={"file": str(path), "column": wanted},
            )
        return wanted
    return next((c for c in columns if c.lower() == "id"), None)


def _needed_columns(
    model: LoadedModel, source: _Input, id_column: str | None, model_ref: str
) -> list[str] | None:
    """The columns to read (model inputs and the id), or None for all (no signature).

    Raises:
        SchemaMismatchError: A column of the signature is not in the file.
    """
    sig = model.signature
    if sig is None or not sig.inputs:
        return None
    present = set(source.columns)
    missing = [c for c in sig.input_names if c not in present]
    if missing:
        raise SchemaMismatchError(
            f"{source.path} lacks column(s) {', '.join(map(repr, missing))} that {model_ref} "
            "takes; add them to the file, or score it with a model version whose signature "
            "matches its columns",
            details={"file": str(source.path), "missing": missing},
        )
    needed = list(sig.input_names)
    if id_column is not None and id_column not in needed:
        needed.append(id_column)
    return needed


def _proba_labels(model: LoadedModel, sample: pd.DataFrame, scorer: _Scorer) -> tuple[Any, ...]:
    """The class labels when the model gives probabilities, else ()."""
    labels = model.classes_
    if not labels:
        return ()
    try:
        model.predict_proba(scorer.features(sample.head(1)))
    except InvalidStateError:  # a classifier without probabilities
        return ()
    except SchemaMismatchError as exc:
        raise SchemaMismatchError(
            f"the first rows of {scorer.source}: {exc.message}",
            details={**exc.details, "file": scorer.source},
        ) from None
    return tuple(labels)


def _check_options(chunk_rows: int, model_ref: str, version: int) -> None:
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise InvalidInputError(f"chunk_rows must be a whole number >= 1, got {chunk_rows!r}")
    if not isinstance(model_ref, str) or not model_ref.strip():
        raise InvalidInputError(
            f"model_ref must name the model (e.g. 'churn@3'), got {model_ref!r}"
        )
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInputError(f"version must be a whole number >= 1, got {version!r}")


def _temp_next_to(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")


def score_file(
    model: LoadedModel,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    model_ref: str,
    version: int,
    id_column: str | None = None,
    chunk_rows: int = 50_000,
    proba: bool = True,
    progress: Progress | None = None,
    scheduler: Any = None,
) -> BatchReport:
    """Score every row of a CSV or Parquet file and write the predictions to another.

    Args:
        model: The loaded model (``registry.load("churn@production")``).
        input_path: A ``.parquet``, ``.csv`` or ``.csv.gz`` file with (at least) the
            model's input columns; other columns are ignored.
        output_path: Where to write: ``.parquet``, ``.csv`` or ``.csv.gz``. Replaced if it
            exists; its folder is created if missing.
        model_ref: Written in the ``model`` column; name the version, not an alias
            (``churn@3``), so the output says which model scored it.
        version: Written in the ``model_version`` column.
        id_column: The input column copied to the output to join predictions back;
            default: the first column called ``id`` (any case), else a ``row`` column.
        chunk_rows: Rows read and scored at a time (on Dask: about the rows of a
            partition).
        proba: Add a ``proba_<class>`` column per class for classifiers that give
            probabilities.
        progress: Called as ``progress(rows_done, total_rows_or_None)`` after each chunk.
        scheduler: A Dask scheduler address (``tcp://host:8786``) or a
            ``distributed.Client``: partitions are scored on its workers (see the module
            docstring for the limits).

    Returns:
        A :class:`BatchReport`.

    Raises:
        InvalidInputError: A missing or unreadable input, an unknown extension, an id
            column that is not there, an empty input, or a scheduler without Dask.
        SchemaMismatchError: The input lacks columns of the model's signature (nothing is
            written), or some rows do not match it (the message names the rows).
        InvalidStateError: The model gives more than one prediction per row.
    """
    started = time.perf_counter()
    _check_options(chunk_rows, model_ref, version)
    source = _Input.open(Path(input_path))
    output = Path(output_path)
    out_format = _format_of(output, "output")
    if output.exists() and output.resolve() == source.path.resolve():
        raise InvalidInputError(
            f"the output {output} is the input file; write the predictions to another file"
        )
    id_col = _id_column(source.columns, id_column, source.path)
    needed = _needed_columns(model, source, id_col, model_ref)
    sig_inputs = set(model.signature.input_names) if model.signature is not None else set()
    text_columns = [id_col] if id_col is not None and id_col not in sig_inputs else []
    scorer = _Scorer(str(source.path), id_col, model_ref, version,
                     drop_id=id_col is not None and id_col not in sig_inputs)  # fmt: skip
    reserved = (PREDICTION_COLUMN, MODEL_COLUMN, VERSION_COLUMN)
    if id_col is not None and (id_col in reserved or id_col.startswith(PROBA_PREFIX)):
        raise InvalidInputError(
            f"the id column {id_col!r} has the name of an output column; pass another "
            "id_column (or rename it in the file)",
            details={"column": id_col},
        )
    if scheduler is not None:
        _check_dask(model)

    with contextlib.closing(source.chunks(needed, chunk_rows, text_columns)) as chunks:
        first = next((c for c in chunks if len(c)), None)
        if first is None:
            raise InvalidInputError(
                f"the input file {source.path} has no rows; there is nothing to score",
                details={"file": str(source.path)},
            )
        if proba:
            labels = _proba_labels(model, first, scorer) or None
            scorer = dataclasses.replace(scorer, labels=labels)
        output.parent.mkdir(parents=True, exist_ok=True)
        temp = _temp_next_to(output)
        sink = _Output(temp, out_format)
        try:
            try:
                if scheduler is None:
                    rows, n_chunks = _score_here(
                        model, scorer, first=first, rest=chunks, sink=sink, source=source,
                        progress=progress,
                    )  # fmt: skip
                else:
                    chunks.close()  # the workers read the file
                    rows, n_chunks = _score_on_dask(
                        model, scorer, sample=first, sink=sink, source=source, needed=needed,
                        text_columns=text_columns, chunk_rows=chunk_rows, scheduler=scheduler,
                        progress=progress,
                    )  # fmt: skip
            finally:
                sink.close()
            os.replace(temp, output)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    seconds = time.perf_counter() - started
    logger.info("scored %d rows of %s with %s in %.2fs", rows, source.path, model_ref, seconds)
    return BatchReport(rows, seconds, output, model_ref, version, n_chunks, scorer.columns())


def _score_here(
    model: LoadedModel,
    scorer: _Scorer,
    *,
    first: pd.DataFrame,
    rest: Iterator[pd.DataFrame],
    sink: _Output,
    source: _Input,
    progress: Progress | None,
) -> tuple[int, int]:
    rows = n_chunks = 0
    for frame in _chain(first, rest):
        if not len(frame):
            continue
        out = scorer.score(model, frame, f"rows {rows:,}-{rows + len(frame) - 1:,}")
        if scorer.id_column is None:
            out[ROW_COLUMN] += rows
        sink.write(out)
        rows += len(frame)
        n_chunks += 1
        if progress is not None:
            progress(rows, source.total)
    return rows, n_chunks


def _chain(first: pd.DataFrame, rest: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    yield first
    yield from rest


# --------------------------------------------------------------------------------------
# Dask


def _check_dask(model: LoadedModel) -> None:
    import importlib.util

    if importlib.util.find_spec("distributed") is None:
        raise InvalidInputError(
            "a Dask scheduler was given but Dask is not installed; pip install 'shipyard[dask]' "
            "or score without a scheduler"
        )
    try:
        pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise InvalidInputError(
            f"the {model.flavor} model cannot be sent to Dask workers ({exc}); score without "
            "a scheduler",
            details={"flavor": model.flavor},
        ) from None


def _partition_bytes(source: _Input, chunk_rows: int) -> int | None:
    """Bytes of input that hold about ``chunk_rows`` rows (None: one partition, for gzip)."""
    if source.format == "csv.gz":
        return None
    size: int
    rows: int
    if source.format == "parquet":
        import pyarrow.parquet as pq

        with pq.ParquetFile(source.path) as pf:
            meta = pf.metadata
            size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
            rows = meta.num_rows
    else:
        with source.path.open("rb") as handle:
            handle.readline()  # the header
            lines = list(itertools.islice(handle, 1000))
        size, rows = sum(map(len, lines)), len(lines)
    return max(1, math.ceil(size / max(rows, 1) * chunk_rows))


def _score_on_dask(
    model: LoadedModel,
    scorer: _Scorer,
    *,
    sample: pd.DataFrame,
    sink: _Output,
    source: _Input,
    needed: list[str] | None,
    text_columns: Sequence[str],
    chunk_rows: int,
    scheduler: Any,
    progress: Progress | None,
) -> tuple[int, int]:
    import dask.dataframe as dd
    import distributed
    from dask.delayed import delayed

    client_type: Any = distributed.Client
    owned = not isinstance(scheduler, client_type)
    client: Any = client_type(scheduler, set_as_default=False) if owned else scheduler
    futures: list[Any] = []
    try:
        path, blocksize = str(source.path), _partition_bytes(source, chunk_rows)
        if source.format == "parquet":
            frame = dd.read_parquet(path, columns=needed, blocksize=blocksize)
        else:
            frame = dd.read_csv(
                path, usecols=needed, dtype={c: str for c in text_columns} or None,
                blocksize=blocksize,
            )  # fmt: skip
        meta = scorer.score(model, sample.head(2), "the first rows").iloc[:0]
        # one key for the model: each worker receives (and unpickles) it once
        shared = delayed(model, name=f"shipyard-model-{uuid.uuid4().hex}", traverse=False)
        scored = frame.map_partitions(_score_partition, shared, scorer, meta=meta)
        futures = client.compute(scored.to_delayed())
        rows = 0
        for number, future in enumerate(futures):
            try:
                out = future.result()
            except ValueError as exc:  # dask's CSV reader found another type than at the start
                if "Mismatched dtypes" not in str(exc):
                    raise
                raise InvalidInputError(
                    f"partition {number} of {path}: a column has other types of values than at "
                    f"the start of the file, where Dask inferred the column types ({exc}); "
                    "convert the file to Parquet, or score it without a scheduler",
                    details={"file": path},
                ) from None
            future.release()
            if scorer.id_column is None:
                out[ROW_COLUMN] += rows
            if len(out):
                sink.write(out)
            rows += len(out)
            if progress is not None:
                progress(rows, source.total)
        return rows, len(futures)
    finally:
        pending = [f for f in futures if f.status == "pending"]
        if pending:
            client.cancel(pending)
        if owned:
            client.close()
