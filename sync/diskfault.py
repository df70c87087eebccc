"""A full or read-only disk, said in one line with one exit status instead of a traceback.

Every command and service of the appliance and the hub runs its work through :func:`guard`.
An error that comes from the disk — ``OSError`` ``ENOSPC``, ``EDQUOT`` or ``EROFS``, SQLite's
"database or disk is full", "attempt to write a readonly database" and "disk I/O error",
PostgreSQL's ``disk_full`` and ``read_only_sql_transaction``, and SQLite's "unable to open
database file" when the file system it names is read-only or full — ends the program with
``EX_IOERR`` (74, from sysexits.h) and one line on standard error saying what and where.
Anything else goes on as it would have.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

EX_IOERR = 74
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_PG_STATES = {"53100": "the database server's disk is full",
              "25006": "the database is read-only"}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it (SQLAlchemy keeps the driver's error as ``orig``)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [getattr(e, "orig", None), e.__cause__, e.__context__]


def file_system_state(paths: Iterable[str | os.PathLike]) -> str | None:
    """"read-only" or "full" for the first of ``paths`` (or its nearest existing parent) on a
    file system that is, else None."""
    for path in paths:
        p = Path(path).absolute()
        while not p.exists() and p != p.parent:
            p = p.parent
        try:
            st = os.statvfs(p)
        except OSError:
            continue
        if st.f_flag & os.ST_RDONLY:
            return f"{path}: the file system is read-only"
        if st.f_bavail == 0 or st.f_favail == 0:
            return f"{path}: the disk is full"
    return None


def disk_problem(exc: BaseException, paths: Iterable[str | os.PathLike] = ()) -> str | None:
    """One line naming the disk problem behind ``exc``, or None if it is not one. ``paths``
    are the files the program writes (its database, its configuration), looked at when
    SQLite says only that it could not open a file."""
    paths = list(paths)
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in _FULL_ERRNOS + (errno.EROFS,):
            what = "the disk is full" if e.errno in _FULL_ERRNOS else \
                "the file system is read-only"
            return f"{e.filename}: {what}" if e.filename else (
                file_system_state(paths) or what)
        state = getattr(e, "sqlstate", None)
        if state in _PG_STATES:
            return _PG_STATES[state]
        if isinstance(e, sqlite3.DatabaseError):
            message = str(e).lower()
            where = file_system_state(paths)
            if "database or disk is full" in message:
                return where or "the disk is full (SQLite: database or disk is full)"
            if "readonly database" in message:
                return where or "the database is read-only (SQLite: attempt to write a " \
                    "readonly database)"
            if "disk i/o error" in message:
                return where or "the disk failed (SQLite: disk I/O error)"
            if "unable to open database file" in message and where:
                return where
    return None


def guard(prog: str, work: Callable[[], int],
          paths: Callable[[], Iterable[str | os.PathLike]] = list) -> int:
    """``work()``'s exit status; on a disk problem, one line on stderr and ``EX_IOERR``.
    ``paths`` is called only then, so a configuration that cannot be read costs nothing."""
    try:
        return work()
    except Exception as e:
        try:
            where = list(paths())
        except Exception:  # noqa: BLE001 - the paths are only a hint for the message
            where = []
        problem = disk_problem(e, where)
        if problem is None:
            raise
        sys.stderr.write(f"{prog}: cannot go on: {problem}\n")
        sys.stderr.flush()
        return EX_IOERR
