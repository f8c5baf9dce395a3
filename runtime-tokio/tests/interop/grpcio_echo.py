"""grpcio peer for skiff's interop tests (no generated code: raw-bytes handlers).

  python grpcio_echo.py server NAME      serve /echo.Echo/Say on 127.0.0.1:0, print the port,
                                         answer every call with b"NAME:" + request
  python grpcio_echo.py client TARGET N  make N unary calls to /echo.Echo/Say on TARGET (which
                                         may be xds:///...; GRPC_XDS_BOOTSTRAP must then be
                                         set) and print one JSON line per call
"""
import json
import sys
import time
from concurrent import futures

import grpc


def serve(name):
    def say(request, context):
        return name.encode() + b":" + request

    handler = grpc.method_handlers_generic_handler(
        "echo.Echo", {"Say": grpc.unary_unary_rpc_method_handler(say)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    # Exit when the test closes our stdin (or after 5 minutes at most).
    deadline = time.time() + 300
    while time.time() < deadline:
        if not sys.stdin.readline():
            break
    server.stop(0)


def client(target, n):
    channel = grpc.insecure_channel(target)
    say = channel.unary_unary("/echo.Echo/Say")
    for i in range(n):
        try:
            reply = say(b"hello-%d" % i, timeout=10)
            print(json.dumps({"ok": True, "reply": reply.decode()}), flush=True)
        except grpc.RpcError as e:
            print(json.dumps({"ok": False, "code": str(e.code()), "details": e.details()}), flush=True)
    channel.close()


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(sys.argv[2])
    else:
        client(sys.argv[2], int(sys.argv[3]))
