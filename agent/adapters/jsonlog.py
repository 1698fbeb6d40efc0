"""JSON logs: one event a line, with level, logger, message and any structured `extra` fields."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from types import TracebackType

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                event[key] = value
        if record.exc_info:
            event["error"] = self.formatException(record.exc_info)
        return json.dumps(event, default=str)


def _uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None, **where: object) -> None:
    logging.getLogger("segcheck").critical("uncaught exception", exc_info=(kind, exc, tb), extra=where)


def _uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        _uncaught(args.exc_type, args.exc_value, args.exc_traceback, in_thread=args.thread.name if args.thread else None)


def _unraisable(args: "sys.UnraisableHookArgs") -> None:
    if args.exc_value is not None:
        _uncaught(args.exc_type, args.exc_value, args.exc_traceback, in_object=repr(args.object)[:200])


def configure(level: str = "info") -> None:
    """JSON lines on stderr, for log records and for any exception nothing caught (no plain tracebacks)."""
    sys.excepthook = _uncaught
    threading.excepthook = _uncaught_in_thread
    sys.unraisablehook = _unraisable
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("urllib3", "ovsdbapp", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
