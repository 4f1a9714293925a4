"""A websocket client that reads only when told to: a client that "stops reading" for real.

Library clients keep draining the socket into their own buffers; this one uses the
websockets sans-I/O protocol on a plain socket with a small receive buffer, so when the test
does not call :meth:`RawClient.receive`, nothing is read and TCP pushes back on the server.
"""

from __future__ import annotations

import asyncio
import socket

from websockets.client import ClientProtocol
from websockets.frames import Frame
from websockets.protocol import State
from websockets.uri import parse_uri

from shared.protocol import Message, decode, encode


class RawClient:
    def __init__(self, url: str) -> None:
        self.url = url.replace("http://", "ws://") + "/ws"
        host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window
        self.sock.setblocking(False)
        self.address = (host, int(port))
        self.protocol = ClientProtocol(parse_uri(self.url))
        self._messages: list[Message] = []

    async def open(self) -> RawClient:
        loop = asyncio.get_running_loop()
        await loop.sock_connect(self.sock, self.address)
        self.protocol.send_request(self.protocol.connect())
        await self._flush()
        while self.protocol.state is State.CONNECTING:
            await self._read_some()
        return self

    async def send(self, message: Message) -> None:
        self.protocol.send_binary(encode(message))
        await self._flush()

    async def receive(self) -> Message:
        """The next message (reading from the socket only now)."""
        while not self._messages:
            await self._read_some()
        return self._messages.pop(0)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        for data in self.protocol.data_to_send():
            if data:
                await loop.sock_sendall(self.sock, data)

    async def _read_some(self) -> None:
        data = await asyncio.get_running_loop().sock_recv(self.sock, 65536)
        if not data:
            raise ConnectionError("server closed the connection")
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Frame) and event.opcode.name == "BINARY":
                self._messages.append(decode(bytes(event.data)))
        await self._flush()  # pongs and close replies

    def close(self) -> None:
        self.sock.close()
