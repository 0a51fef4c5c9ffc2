"""The data catalog: adding, reading, validating, profiling, cleaning and splitting versions.

A :class:`DataCatalog` ties the dataset records (``SqlDatasetStore``) to the bytes
(the object store). Tables are normalised to Parquet; folders are stored as
content-addressed objects (small files packed together) plus a JSON manifest. Every
version carries its inferred schema and a profile; the first version of a dataset also writes an
editable expectations file, ``<expectations_dir>/<name>.yaml``.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.core.entities import DatasetVersion
from shipyard.core.errors import (
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    SchemaMismatchError,
)
from shipyard.store.dataset_store import SqlDatasetStore, check_dataset_name
from shipyard.store.objects import ObjectStore, hash_bytes

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.data.cleaning import CleaningReport
    from shipyard.data.compare import DatasetDiff
    from shipyard.data.folders import FolderChanges, FolderManifest, HashCache
    from shipyard.data.profiling import Profile
    from shipyard.data.relationships import RelationshipGraph
    from shipyard.data.splits import LeakageReport
    from shipyard.data.validation import Expectations, ValidationReport

logger = logging.getLogger(__name__)

TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}


def table_digest(df: pd.DataFrame) -> str:
    """Content hash of a table: column names, dtypes and every value (index if not a range)."""
    import pandas as pd

    keep_index = (
        not isinstance(df.index, pd.RangeIndex) or df.index.start != 0 or (df.index.step != 1)
    )
    header = repr([(str(c), str(t)) for c, t in df.dtypes.items()]).encode()
    rows = pd.util.hash_pandas_object(df, index=keep_index).to_numpy().tobytes()
    return hash_bytes(header + b"\0" + rows)


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV, TSV or Parquet file, turning every parse failure into a clear error.

    CSV and TSV files are checked after parsing: a header with no rows is refused, and so
    is a column of numbers with some values that are not numbers (pandas would silently
    read the whole column as text). A text column whose values are all ISO 8601 dates or
    times (``2024-01-31``, ``2024-01-31T09:30:00Z``) becomes a datetime64 column.

    Raises:
        InvalidInputError: the file is missing, empty, has no rows, is malformed or is not
            UTF-8.
        SchemaMismatchError: a column of numbers holds values that are not numbers.
    """
    import pandas as pd

    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if not path.exists():
        raise InvalidInputError(f"no such file or folder: {path}")
    if kind is None:
        raise InvalidInputError(
            f"{path.name}: cannot read a {path.suffix or 'suffix-less'} file as a table; "
            "give a .csv, .tsv or .parquet file, or its folder to version the files as they are"
        )
    if path.stat().st_size == 0:
        raise InvalidInputError(f"{path} is empty: there is no header and no rows to version")
    sep = "\t" if kind == "tsv" else ","
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        df = pd.read_csv(path, sep=sep)
    except pd.errors.EmptyDataError as exc:
        raise InvalidInputError(f"{path} has no columns to read ({exc})") from exc
    except pd.errors.ParserError as exc:
        raise InvalidInputError(
            f"{path} is not well-formed {kind.upper()}: {exc}. Check the quoting and the number "
            "of fields on that line."
        ) from exc
    except UnicodeDecodeError as exc:
        raise _not_utf8_error(path, exc) from exc
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read {path}: {exc}") from exc
    # Outside the try: SchemaMismatchError is a ValueError and must not be reworded above.
    if len(df) == 0:
        raise InvalidInputError(
            f"{path} has a header ({_column_list(df.columns)}) but no rows; add rows below "
            "the header, one per record, and add the file again",
            details={"file": str(path), "columns": [str(c) for c in df.columns]},
        )
    for name in df.columns:
        column = df[name]
        if isinstance(column.dtype, pd.StringDtype) or column.dtype == object:
            datetimes = _iso_datetimes(column)
            if datetimes is not None:
                df[name] = datetimes  # dates are not numbers: nothing more to check
            else:
                _check_numbers_only(path, sep, str(name), column)
    return df


# A superset of what pd.to_numeric accepts (no \s: pandas would leave pyarrow's regex
# engine for Python's re, value by value).
_NUMBER_LIKE = (
    r"[ \t]*[+-]?"
    r"(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)"
    r"[ \t]*"
)
# Strings must start like a date before pandas may parse them: "20240131" is a number.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# A time with a UTC offset ("Z", "+01", "-05:30"): offsets may differ, e.g. across DST.
_UTC_OFFSET = r"[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)$"
_NUMBER_SAMPLE = 2_000
_MAX_EXAMPLES = 3


def _check_numbers_only(path: Path, sep: str, name: str, column: pd.Series) -> None:
    """Refuse a text column whose values are mostly numbers: the rest are typos, not text.

    Mostly means at least half of the present values parse with ``pd.to_numeric``, which
    is slow on text; a random sample of the values rules out text columns first.
    """
    import numpy as np
    import pandas as pd

    present = column.notna()
    positions = present.to_numpy().nonzero()[0]
    n_present = len(positions)
    if n_present > _NUMBER_SAMPLE:
        # If half the values are numbers, fewer than a quarter of a random sample of 2,000
        # look like numbers with probability below e**-250 (Hoeffding's inequality).
        rng = np.random.default_rng(0)
        sample = np.sort(rng.choice(positions, _NUMBER_SAMPLE, replace=False))
        number_like = column.iloc[sample].astype(str).str.fullmatch(_NUMBER_LIKE)
        if 4 * int(number_like.sum()) < _NUMBER_SAMPLE:
            return
    bad = present & pd.to_numeric(column, errors="coerce").isna()
    n_bad = int(bad.sum())
    if n_bad == 0 or 2 * (n_present - n_bad) < n_present:
        return
    rows = bad.to_numpy().nonzero()[0][:_MAX_EXAMPLES].tolist()
    lines = _csv_line_numbers(path, sep, rows)
    found = [{"line": lines[r], "value": str(column.iloc[r])} for r in rows]
    examples = ", ".join(f"line {e['line']}: {e['value']!r}" for e in found)
    counted = (
        f"1 of {n_present:,} values is not a number"
        if n_bad == 1
        else f"{n_bad:,} of {n_present:,} values are not numbers"
    )
    read_args = f"{str(path)!r}, " + (r"sep='\t', " if sep == "\t" else "")
    raise SchemaMismatchError(
        f"column {name!r} of {path} mixes numbers and text: {counted} "
        f"({'' if n_bad == 1 else 'e.g. '}{examples}); a column must hold one type. Correct "
        f"those values, or if {name!r} really is text, read the file with pandas, "
        f"df = pd.read_csv({read_args}dtype={{{name!r}: str}}), and add the DataFrame",
        details={
            "file": str(path),
            "column": name,
            "not_numbers": n_bad,
            "examples": found,
        },
    )


def _iso_datetimes(column: pd.Series) -> pd.Series | None:
    """``column`` as datetime64 if every present value is an ISO 8601 date or time, else None."""
    import pandas as pd

    first = column.first_valid_index()
    if first is None or not isinstance(column[first], str) or not _ISO_DATE.match(column[first]):
        return None  # the cheap test that rules out almost every text column
    missing = column.isna()
    if not (column.str.match(_ISO_DATE.pattern, na=False) | missing).all():
        return None  # na=False: a number in an object column is not a date either
    try:
        parsed = pd.to_datetime(column, format="ISO8601", errors="coerce")
    except ValueError:  # different UTC offsets: compare in UTC, unless some times are naive
        if not column.str.contains(_UTC_OFFSET, na=True).all():
            return None
        parsed = pd.to_datetime(column, format="ISO8601", errors="coerce", utc=True)
    if (parsed.isna() & ~missing).any():
        return None  # some value looked like a date but was not one: keep the text
    return parsed


def _csv_line_numbers(path: Path, sep: str, rows: Sequence[int]) -> dict[int, int]:
    """The 1-based line on which each 0-based data row starts (the header is line 1).

    Only called to word an error, so it reads the file again with the csv module, which
    counts lines across quoted line breaks; blank lines are skipped as pandas skips them.
    Falls back to ``row + 2`` if the file cannot be read that way.
    """
    wanted = set(rows)
    found: dict[int, int] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=sep)
            row, end = -2, 0  # the first record read is the header, row -1
            for record in reader:
                start, end = end + 1, reader.line_num
                if len(record) == 0 or (len(record) == 1 and not record[0].strip()):
                    continue
                row += 1
                if row in wanted:
                    found[row] = start
                    if len(found) == len(wanted):
                        break
    except (OSError, UnicodeDecodeError, csv.Error):
        pass
    return {r: found.get(r, r + 2) for r in rows}


def _column_list(columns: Sequence[object], *, limit: int = 10) -> str:
    names = ", ".join(str(c) for c in list(columns)[:limit])
    more = len(columns) - limit
    return names + (f" and {more:,} more" if more > 0 else "")


def _not_utf8_error(path: Path, exc: UnicodeDecodeError) -> InvalidInputError:
    """Where the first undecodable byte is in the file: pandas reports it within a field."""
    where = _first_non_utf8_byte(path)
    if where is None:  # the file changed since pandas read it
        return InvalidInputError(
            f"{path} is not UTF-8 text ({exc.reason}); re-save it as UTF-8 or read it "
            "yourself with the right encoding and add the DataFrame"
        )
    offset, line, byte, reason = where
    return InvalidInputError(
        f"{path} is not UTF-8 text: byte {offset:,} (line {line}, 0x{byte:02x}) cannot be "
        f"decoded ({reason}); re-save it as UTF-8, or read it with pandas and the right "
        f"encoding, e.g. df = pd.read_csv({str(path)!r}, encoding='latin-1'), and add the "
        "DataFrame",
        details={"file": str(path), "byte_offset": offset, "line": line},
    )


def _first_non_utf8_byte(path: Path) -> tuple[int, int, int, str] | None:
    """``(offset, line, byte, reason)`` of the first byte of ``path`` that is not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line = 0, 1  # file offset of the chunk being decoded; lines before it, plus 1
    with path.open("rb") as f:
        while True:
            chunk = f.read(1 << 20)
            pending = decoder.getstate()[0]  # the start of a character cut by the last chunk
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:  # exc.object is pending + chunk
                line += exc.object[: exc.start].count(b"\n")
                return offset - len(pending) + exc.start, line, exc.object[exc.start], exc.reason
            if not chunk:
                return None
            offset += len(chunk)
            line += chunk.count(b"\n")


@dataclass(frozen=True)
class Dataset:
    """A dataset version and the way to its bytes. ``sy.data.get`` returns one."""

    version: DatasetVersion
    catalog: DataCatalog

    @property
    def ref(self) -> str:
        return self.version.ref

    def to_pandas(self) -> pd.DataFrame:
        """The table (hash-checked on read). Folders raise: use :meth:`files`/:meth:`checkout`."""
        import pandas as pd

        if self.version.kind != "table":
            raise InvalidStateError(
                f"{self.ref} is a folder of files, not a table: it has no rows to read, "
                f"profile or relate. Get its files with `shipyard data checkout {self.ref} "
                "DEST` (in Python: .checkout(dest) or .files())"
            )
        return pd.read_parquet(
            io.BytesIO(self.catalog.objects.get_bytes(self.version.object_digest))
        )

    def manifest(self) -> FolderManifest:
        from shipyard.data.folders import FolderManifest

        if self.version.kind != "files":
            raise InvalidStateError(
                f"{self.ref} is a table, not a folder of files; read it with .to_pandas() "
                f"(on the command line: `shipyard data show {self.ref}`, or `shipyard data "
                "diff` to compare two versions)"
            )
        return FolderManifest.from_bytes(self.catalog.objects.get_bytes(self.version.object_digest))

    def files(self) -> list[str]:
        return [e.path for e in self.manifest().entries]

    def checkout(self, dest: str | os.PathLike[str]) -> Path:
        """Write the folder's files under ``dest`` (each hash-checked, none outside it)."""
        from shipyard.data.folder_store import checkout_folder

        if self.version.kind != "files":
            raise InvalidStateError(
                f"{self.ref} is a table, not a folder of files; read it with .to_pandas() "
                f"(on the command line: `shipyard data show {self.ref}`, or `shipyard data "
                "diff` to compare two versions)"
            )
        checkout_folder(self.catalog.objects, self.version.object_digest, dest)
        return Path(dest)


class DataCatalog:
    """Datasets in one store.

    Args:
        store: the dataset records.
        objects: where the bytes go.
        cache_dir: folder for the file-hash cache (shared by stores).
        expectations_dir: folder of the editable ``<name>.yaml`` expectation files.
    """

    def __init__(
        self,
        store: SqlDatasetStore,
        objects: ObjectStore,
        *,
        cache_dir: Path,
        expectations_dir: Path,
    ) -> None:
        self.store = store
        self.objects = objects
        self.cache_dir = cache_dir
        self.expectations_dir = expectations_dir
        self._hash_cache: HashCache | None = None

    @property
    def hash_cache(self) -> HashCache:
        from shipyard.data.folders import HashCache

        if self._hash_cache is None:
            self._hash_cache = HashCache(self.cache_dir / "file-hashes.db")
        return self._hash_cache

    # -- adding ------------------------------------------------------------------------

    def add(
        self,
        name: str,
        source: Any,
        *,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        aliases: Sequence[str] = (),
        parents: Sequence[DatasetVersion] = (),
        step: str = "",
        run_id: str | None = None,
        with_profile: bool = True,
        link: bool = False,
    ) -> DatasetVersion:
        """Add a DataFrame, a CSV/TSV/Parquet file or a folder as a new version of ``name``.

        ``link=True`` (folders, local store): hard-link files of 256 KB and more into
        the store instead of copying them; they become read-only (see ``store_folder``).

        Identical content returns the existing version. Nothing is recorded unless every
        byte is stored first, so a failure leaves no half-made version.

        Raises:
            InvalidInputError: the file is missing, empty, malformed or not UTF-8.
            SchemaMismatchError: a column mixes types (e.g. numbers and text).
        """
        import pandas as pd

        check_dataset_name(name)
        if isinstance(source, pd.DataFrame):
            version = self._add_table(
                name,
                source,
                source_desc="DataFrame",
                description=description,
                tags=tags,
                parents=parents,
                step=step,
                run_id=run_id,
                with_profile=with_profile,
            )
        elif isinstance(source, str | os.PathLike):
            path = Path(source)
            if path.is_dir():
                version = self._add_folder(
                    name,
                    path,
                    description=description,
                    tags=tags,
                    parents=parents,
                    step=step,
                    run_id=run_id,
                    link=link,
                )
            else:
                version = self._add_table(
                    name,
                    read_table(path),
                    source_desc=str(path),
                    description=description,
                    tags=tags,
                    parents=parents,
                    step=step,
                    run_id=run_id,
                    with_profile=with_profile,
                )
        else:
            raise InvalidInputError(
                f"data.add takes a DataFrame or a path to a CSV/Parquet file or a folder, got "
                f"{type(source).__name__}"
            )
        for alias in aliases:
            version = self.store.set_alias(version.ref, alias)
        return version

    def _add_table(
        self,
        name: str,
        df: pd.DataFrame,
        *,
        source_desc: str,
        description: str,
        tags: Mapping[str, str] | None,
        parents: Sequence[DatasetVersion],
        step: str,
        run_id: str | None,
        with_profile: bool,
    ) -> DatasetVersion:
        from shipyard.data.schema import infer_schema

        if df.shape[1] == 0:
            raise InvalidInputError(f"the table for {name!r} has no columns")
        df = df.copy()
        df.columns = [str(c) for c in df.columns]
        schema = infer_schema(df)  # raises SchemaMismatchError on mixed-type columns
        buf = io.BytesIO()
        try:
            df.to_parquet(buf, index=None)
        except (ValueError, TypeError) as exc:  # pyarrow refuses mixed objects
            raise SchemaMismatchError(f"cannot store {name!r} as Parquet: {exc}") from exc
        data = buf.getvalue()
        info = self.objects.put_bytes(data)
        profile_digest = None
        if with_profile:
            from shipyard.data.profiling import profile

            profile_digest = self.objects.put_bytes(profile(df).to_json().encode()).digest
        version, created = self.store.add_version(
            name, digest=table_digest(df), kind="table", object_digest=info.digest,
            source=source_desc, size_bytes=info.size, num_rows=len(df),
            num_columns=df.shape[1], schema=schema.to_dict(), profile_digest=profile_digest,
            description=description, tags=tags, parents=parents, step=step, run_id=run_id,
        )  # fmt: skip
        if created:
            self._write_expectations(name, schema)
        return version

    def _add_folder(
        self,
        name: str,
        root: Path,
        *,
        description: str,
        tags: Mapping[str, str] | None,
        parents: Sequence[DatasetVersion],
        step: str,
        run_id: str | None,
        link: bool,
    ) -> DatasetVersion:
        from shipyard.data.folder_store import store_folder

        try:
            latest = self.store.resolve(f"{name}@latest")
            previous = latest.object_digest if latest.kind == "files" else None
        except NotFoundError:
            previous = None
        stored = store_folder(
            root, self.objects, cache=self.hash_cache, previous=previous, link=link
        )
        manifest = stored.manifest
        version, _ = self.store.add_version(
            name, digest=manifest.digest, kind="files", object_digest=stored.object_digest,
            source=str(root), size_bytes=manifest.total_size, num_files=len(manifest.entries),
            description=description, tags=tags, parents=parents, step=step, run_id=run_id,
        )  # fmt: skip
        return version

    def _write_expectations(self, name: str, schema: Any) -> None:
        from shipyard.data.validation import Expectations

        path = self.expectations_path(name)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(Expectations.from_schema(schema).to_yaml())
        os.replace(tmp, path)

    # -- reading -----------------------------------------------------------------------

    def get(self, ref: str | DatasetVersion) -> Dataset:
        version = ref if isinstance(ref, DatasetVersion) else self.store.resolve(ref)
        return Dataset(version, self)

    def frame(self, data: Any) -> tuple[pd.DataFrame, str]:
        """A DataFrame and a label for a DataFrame, a reference, a version or a file."""
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            return data, "DataFrame"
        if isinstance(data, Dataset):
            return data.to_pandas(), data.ref
        if isinstance(data, DatasetVersion):
            return self.get(data).to_pandas(), data.ref
        if isinstance(data, str | os.PathLike) and Path(data).is_file():
            return read_table(Path(data)), str(data)
        if isinstance(data, str):
            ds = self.get(data)
            return ds.to_pandas(), ds.ref
        raise InvalidInputError(
            f"expected a DataFrame, a dataset reference like 'customers@2' or a table file, "
            f"got {type(data).__name__}"
        )

    def expectations_path(self, name: str) -> Path:
        return self.expectations_dir / f"{check_dataset_name(name)}.yaml"

    def expectations(self, spec: Any) -> Expectations:
        """Expectations from an object, a YAML path, or a dataset name (its saved file)."""
        from shipyard.data.validation import Expectations

        if isinstance(spec, Expectations):
            return spec
        if isinstance(spec, str | os.PathLike) and Path(spec).suffix in (".yaml", ".yml"):
            path = Path(spec)
        elif isinstance(spec, str):
            path = self.expectations_path(spec.partition("@")[0])
        else:
            raise InvalidInputError(
                f"expectations must be an Expectations object, a YAML path or a dataset name, "
                f"got {type(spec).__name__}"
            )
        if not path.is_file():
            raise NotFoundError(
                f"no expectations file at {path}; `shipyard data add` writes one for a new "
                "dataset, or write it yourself"
            )
        return Expectations.from_yaml(path.read_text())

    def validate(self, data: Any, expectations: Any = None) -> ValidationReport:
        """Check ``data`` against ``expectations`` (default: the saved file of its dataset)."""
        from shipyard.data.validation import validate

        df, label = self.frame(data)
        if expectations is None:
            if label in ("DataFrame",) or "@" not in label:
                raise InvalidInputError(
                    "name the expectations to check a DataFrame or file against, e.g. "
                    "expectations='customers'"
                )
            expectations = label.partition("@")[0]
        return validate(df, self.expectations(expectations))

    def diff(self, old: str, new: str) -> DatasetDiff:
        from shipyard.data.compare import diff_frames

        a, b = self.get(old), self.get(new)
        if a.version.kind == "files" or b.version.kind == "files":
            raise InvalidStateError(
                f"diff compares tables, and {a.ref if a.version.kind == 'files' else b.ref} is "
                "a folder of files; to see which files changed, use `shipyard data status "
                "NAME FOLDER`"
            )
        return diff_frames(
            a.to_pandas(), b.to_pandas(), old_name=a.ref, new_name=b.ref,
            old_schema=a.version.schema, new_schema=b.version.schema,
        )  # fmt: skip

    def status(self, name: str, path: str | os.PathLike[str]) -> FolderChanges:
        """Which files under ``path`` differ from the latest version of folder dataset ``name``."""
        from shipyard.data.folders import folder_status

        root = Path(path)
        if not root.is_dir():
            raise InvalidInputError(f"{root} is not a folder; give the folder to compare")
        latest = self.get(name)
        if latest.version.kind != "files":
            raise InvalidStateError(
                f"{latest.ref} is a table, and status compares a folder with a folder version; "
                f"to compare two table versions, use `shipyard data diff {name}@N {latest.ref}`"
            )
        manifest = latest.manifest()
        return folder_status(manifest, root, cache=self.hash_cache)

    # -- analysis ----------------------------------------------------------------------

    def profile(self, data: Any) -> Profile:
        """Per-column statistics of a DataFrame, file or version."""
        from shipyard.data.profiling import profile

        df, _ = self.frame(data)
        return profile(df)

    def graph(self, data: Any, *, target: str | None = None) -> RelationshipGraph:
        """How the variables relate (and to ``target``): see :mod:`shipyard.data.relationships`."""
        from shipyard.data.relationships import relationship_graph

        df, _ = self.frame(data)
        return relationship_graph(df, target=target)

    def report_html(self, data: Any, *, target: str | None = None, with_graph: bool = True) -> str:
        """A self-contained HTML report: profile, and the relationship graph when asked."""
        from shipyard.data.profiling import profile
        from shipyard.data.relationships import relationship_graph
        from shipyard.data.report_html import render_report

        df, label = self.frame(data)
        graph = relationship_graph(df, target=target) if with_graph else None
        return render_report(profile(df), graph, title=label)

    # -- derived versions ----------------------------------------------------------------

    def split(
        self,
        ref: str,
        *,
        method: str = "random",
        target: str | None = None,
        time_column: str | None = None,
        group_column: str | None = None,
        test: float = 0.2,
        valid: float = 0.0,
        seed: int = 0,
        run_id: str | None = None,
    ) -> tuple[dict[str, DatasetVersion], LeakageReport]:
        """Split a table version into train/valid/test versions of the same dataset.

        Each part becomes a version with the source as lineage parent and the alias of its
        part (``customers@train``, ``customers@valid``, ``customers@test``).

        Returns:
            ``({"train": version, ...}, leakage report across the parts)``.
        """
        from shipyard.data.splits import leakage_check, split_frame

        source = self.get(ref)
        df = source.to_pandas()
        result = split_frame(
            df,
            method=method,
            target=target,
            time_column=time_column,
            group_column=group_column,
            test=test,
            valid=valid,
            seed=seed,
        )
        parts = {"train": result.train, "valid": result.valid, "test": result.test}
        made: dict[str, DatasetVersion] = {}
        for part, frame_ in parts.items():
            if frame_ is None or len(frame_) == 0:
                continue
            made[part] = self.add(
                source.version.name, frame_, description=f"{part} split of {source.ref}",
                tags={"split": part, "split_method": method, "split_seed": str(seed)},
                aliases=[part], parents=[source.version], step=f"split:{part}", run_id=run_id,
            )  # fmt: skip
        frames = {p: f for p, f in parts.items() if f is not None and len(f)}
        return made, leakage_check(frames, group_column=group_column)

    def clean(
        self,
        ref: str,
        spec: Any,
        *,
        name: str | None = None,
        run_id: str | None = None,
    ) -> tuple[DatasetVersion, CleaningReport]:
        """Apply a cleaning spec (object, dict or YAML path) and add the result as a version.

        The fitted cleaner is stored too, as a scikit-learn transformer saved with skops; the
        new version's tag ``cleaner`` names its object so serving can run the same cleaning.
        """
        from shipyard.data.cleaning import CleaningSpec, clean_frame

        if isinstance(spec, str | os.PathLike) and Path(spec).is_file():
            spec = CleaningSpec.from_yaml(Path(spec).read_text())
        elif isinstance(spec, dict):
            spec = CleaningSpec.from_dict(spec)
        elif not isinstance(spec, CleaningSpec):
            raise InvalidInputError(
                "a cleaning spec is a CleaningSpec, a dict or the path of a YAML file"
            )
        source = self.get(ref)
        cleaned, cleaner, report = clean_frame(source.to_pandas(), spec)
        tags = {"cleaned_from": source.ref}
        try:
            import skops.io

            tags["cleaner"] = self.objects.put_bytes(skops.io.dumps(cleaner.to_sklearn())).digest
        except (ImportError, TypeError, ValueError) as exc:  # a spec with no sklearn twin
            logger.info("cleaner of %s not exported: %s", source.ref, exc)
        version = self.add(
            name or source.version.name, cleaned, description=f"cleaned {source.ref}",
            tags=tags, parents=[source.version], step="clean", run_id=run_id,
        )  # fmt: skip
        return version, report
