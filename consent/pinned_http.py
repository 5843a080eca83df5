"""POST to a URL over a connection to an address resolved and checked beforehand.

A webhook host name is resolved once, every address it gives is checked, and
the connection goes to the checked address, while the request still names the
host (``Host``, and for https the TLS server name and certificate check). A
name that resolves to a public address when checked and to a private one a
moment later (DNS rebinding) therefore cannot steer the hub into its own
network. Redirects are never followed: http.client does not follow them.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from urllib.parse import urlsplit


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int | None, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int | None, address: str, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the host name, not the address.
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


def post(url: str, address: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """The answer's status; raises ``OSError`` (or ``http.client.HTTPException``) on failure."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http or https URL")
    kind = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
    connection = kind(parts.hostname, parts.port, address, timeout)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        # The receiver's body is never read or kept.
        return response.status
    finally:
        connection.close()
