"""The ceiling grpcio itself sets on this machine: raw ``bytes`` messages over mutual TLS.

``python benchmarks/grpc_raw_reference.py [repeats]`` starts a bare gRPC server (generic
handlers, no protobuf, no framing of ours) in a second process, with certificates from
``write_job_certs``, and measures 1 MiB and 4 MiB messages: a client stream (after a 32-message
warm-up; rate = bytes / time until the server's answer) and a ping-pong (one message, a 1-byte
reply). For the stream it also reports the CPU time per MB of each process (all threads): the
sender's and the receiver's share of the cost of moving bytes, the floor under any protocol
whose time is its traffic. Compare with ``crypten-lite-bench transport``
(``throughput-stream`` / ``throughput``), which runs the same patterns through
``GrpcCommunicator``.
"""

from __future__ import annotations

import os
import queue
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from crypten_lite.transport.grpc import write_job_certs

_OPTIONS = [
    ("grpc.max_send_message_length", 64 << 20),
    ("grpc.max_receive_message_length", 64 << 20),
]


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _serve(certs: Path) -> None:
    def sink(requests: Iterator[bytes], context: Any) -> bytes:
        start = _cpu_s()
        for _ in requests:
            pass
        return f"{_cpu_s() - start:.6f}".encode()  # the receiving process's CPU seconds

    def echo(requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
        for _ in requests:
            yield b"x"

    handler = grpc.method_handlers_generic_handler(
        "bench.Raw",
        {
            "Sink": grpc.stream_unary_rpc_method_handler(sink),
            "Echo": grpc.stream_stream_rpc_method_handler(echo),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(8), options=_OPTIONS)
    server.add_generic_rpc_handlers((handler,))
    credentials = grpc.ssl_server_credentials(
        [((certs / "party-0.key").read_bytes(), (certs / "party-0.pem").read_bytes())],
        root_certificates=(certs / "ca.pem").read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


def _measure(certs: Path, port: int, mib: int) -> tuple[float, float, float, float]:
    credentials = grpc.ssl_channel_credentials(
        (certs / "ca.pem").read_bytes(),
        (certs / "party-1.key").read_bytes(),
        (certs / "party-1.pem").read_bytes(),
    )
    options = [*_OPTIONS, ("grpc.ssl_target_name_override", "party-0")]
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=options) as channel:
        grpc.channel_ready_future(channel).result(10)
        sink = channel.stream_unary("/bench.Raw/Sink")
        echo = channel.stream_stream("/bench.Raw/Echo")
        data = os.urandom(mib << 20)
        count = max(16, 256 // mib)
        sink(iter([data] * 32))  # warm-up
        start, cpu = time.perf_counter(), _cpu_s()
        receiver_cpu = float(sink(iter([data] * count)))
        megabytes = count * len(data) / 1e6
        stream_rate = megabytes / (time.perf_counter() - start) / 1e3
        sender_ms_per_mb = (_cpu_s() - cpu) / megabytes * 1e3
        receiver_ms_per_mb = receiver_cpu / megabytes * 1e3
        outgoing: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

        def requests() -> Iterator[bytes]:
            while (item := outgoing.get()) is not None:
                yield item

        replies = echo(requests())
        samples = []
        for _ in range(40):
            start = time.perf_counter()
            outgoing.put(data)
            next(replies)
            samples.append(time.perf_counter() - start)
        outgoing.put(None)
        ping = len(data) / statistics.median(samples[5:]) / 1e9
        return stream_rate, ping, sender_ms_per_mb, receiver_ms_per_mb


def main(argv: list[str]) -> None:
    if argv and argv[0] == "serve":
        _serve(Path(argv[1]))
        return
    repeats = int(argv[0]) if argv else 3
    with tempfile.TemporaryDirectory(prefix="grpc-raw-") as tmp:
        certs = Path(tmp)
        write_job_certs(certs, 2)
        server = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, __file__, "serve", tmp], stdout=subprocess.PIPE, text=True
        )
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            for mib in (1, 4):
                for _ in range(repeats):
                    stream, ping, sender, receiver = _measure(certs, port, mib)
                    print(
                        f"raw grpcio mTLS {mib} MiB: stream {stream:.3f} GB/s, "
                        f"ping-pong {ping:.3f} GB/s, CPU per MB: sender {sender:.2f} ms, "
                        f"receiver {receiver:.2f} ms"
                    )
        finally:
            server.kill()
            server.wait(5)


if __name__ == "__main__":
    main(sys.argv[1:])
