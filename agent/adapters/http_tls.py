"""TLS for the agent's server: the certificate files' current content, reloaded when they change (as a
service-CA rotation does) without a restart."""

from __future__ import annotations

import logging
import ssl
import time
from pathlib import Path

LOG = logging.getLogger("segcheck.http")
CERT_CHECK_SECONDS = 10.0


class CertReloader:
    """Serves the certificate files' current content: each handshake's SNI callback (called with or without SNI)
    reloads them when they changed (checked at most every CERT_CHECK_SECONDS) and hands the handshake the result."""

    def __init__(self, cert: Path, key: Path):
        self.cert, self.key = cert, key
        self._stamp = self._mtimes()
        self.context = self._load()  # the listening context
        self.context.sni_callback = self._select
        self._current = self.context
        self._checked = time.monotonic()

    def _mtimes(self) -> tuple[float, float]:
        return (self.cert.stat().st_mtime, self.key.stat().st_mtime)

    def _load(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert, self.key)
        return context

    def _select(self, connection: ssl.SSLObject, name: str | None, listening: ssl.SSLContext) -> None:
        self.refresh()
        if self._current is not listening:
            connection.context = self._current

    def refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < CERT_CHECK_SECONDS:
            return
        self._checked = now
        try:
            stamp = self._mtimes()
            if stamp != self._stamp:
                self._current = self._load()
                self._stamp = stamp
                LOG.info("TLS certificate reloaded", extra={"cert": str(self.cert)})
        except (OSError, ssl.SSLError) as exc:  # half-written during rotation: keep the old one, retry later
            LOG.warning("TLS certificate not reloaded", extra={"cert": str(self.cert), "error": str(exc)})
