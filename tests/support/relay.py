"""A TCP relay for fault tests: put it between a process and a service, then make the link fail.

``silence()`` stops forwarding on the connections it has, without closing them (a peer that
vanished without a FIN); ``cut()`` closes them and refuses new ones until ``mend()``. Loopback
only."""

from __future__ import annotations

import contextlib
import select
import socket
import threading


class Relay:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.refusing = False
        self._quiet: list[threading.Event] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            quiet = threading.Event()
            with self._lock:
                self._quiet.append(quiet)
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, quiet), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket, quiet: threading.Event) -> None:
        with contextlib.suppress(OSError, ValueError):
            while not quiet.is_set():
                ready, _, _ = select.select([a, b], [], [], 0.1)
                for source in ready:
                    if quiet.is_set():
                        return
                    data = source.recv(65536)
                    if not data:
                        a.close()
                        b.close()
                        return
                    (b if source is a else a).sendall(data)

    def silence(self) -> None:
        """Forward nothing more on the current connections, and leave them open."""
        with self._lock:
            for quiet in self._quiet:
                quiet.set()

    def cut(self) -> None:
        """Close every current connection and refuse new ones."""
        self.refusing = True
        self.silence()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def mend(self) -> None:
        self.refusing = False

    def close(self) -> None:
        self.cut()
        self.listener.close()
