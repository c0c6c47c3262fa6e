"""Generated protobuf and gRPC code for the wire format in ``protos/crypten_lite/_proto``.

Never edit by hand: regenerate with
``python -m grpc_tools.protoc -Iprotos --python_out=. --pyi_out=. --grpc_python_out=.
protos/crypten_lite/_proto/*.proto`` (tests/transport/test_proto_generated.py checks it).
"""
