"""uvloop-echo: the idiomatic asyncio echo server on uvloop, for `make bench` only (a peer
of echo-server: what a user might write instead).

    python3 uvloop-echo.py [--listen HOST:PORT] [--port-file PATH]

The Protocol API (callbacks, no coroutine per connection): data_received writes what came
straight back; pause_writing/resume_writing (the transport's write buffer above or below
its high-water mark) pause and resume reading, so the memory per connection stays bounded;
eof_received returns None, so the transport closes. TCP_NODELAY: uvloop sets it on every
TCP transport itself. The listen backlog is the bench's BENCH_BACKLOG (4096); the read
size is uvloop's own (one preallocated 256 KiB buffer per loop, not settable). It runs
under Debian's python3, where python3-uvloop installs. SIGTERM: exit 0."""
import argparse
import asyncio
import os
import signal
import sys

import uvloop

BACKLOG = 4096


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def pause_writing(self):
        self.transport.pause_reading()

    def resume_writing(self):
        self.transport.resume_reading()

    def eof_received(self):
        return None  # close the transport


async def serve(host, port, port_file):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, host, port, backlog=BACKLOG, reuse_address=True)
    if port_file:
        # Through a rename, so the bench never reads a partial file.
        with open(port_file + ".tmp", "w") as f:
            f.write(f"{server.sockets[0].getsockname()[1]}\n")
        os.rename(port_file + ".tmp", port_file)
    print(f"uvloop-echo: python {sys.version.split()[0]}, uvloop {uvloop.__version__}",
          flush=True)
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    loop.add_signal_handler(signal.SIGINT, stop.set_result, None)
    await stop
    server.close()


def main():
    ap = argparse.ArgumentParser(description="uvloop echo server (make bench)")
    ap.add_argument("--listen", default="127.0.0.1:7100")
    ap.add_argument("--port-file")
    a = ap.parse_args()
    host, _, port = a.listen.rpartition(":")
    uvloop.install()
    asyncio.run(serve(host, int(port), a.port_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
