from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class RoundInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RoundInfoReply(_message.Message):
    __slots__ = ("job_id", "round", "state", "num_elements", "ring_bits", "quant_scheme", "quant_clip", "num_servers", "server_index", "min_clients", "model")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    NUM_ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    RING_BITS_FIELD_NUMBER: _ClassVar[int]
    QUANT_SCHEME_FIELD_NUMBER: _ClassVar[int]
    QUANT_CLIP_FIELD_NUMBER: _ClassVar[int]
    NUM_SERVERS_FIELD_NUMBER: _ClassVar[int]
    SERVER_INDEX_FIELD_NUMBER: _ClassVar[int]
    MIN_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    round: int
    state: str
    num_elements: int
    ring_bits: int
    quant_scheme: str
    quant_clip: float
    num_servers: int
    server_index: int
    min_clients: int
    model: bytes
    def __init__(self, job_id: _Optional[str] = ..., round: _Optional[int] = ..., state: _Optional[str] = ..., num_elements: _Optional[int] = ..., ring_bits: _Optional[int] = ..., quant_scheme: _Optional[str] = ..., quant_clip: _Optional[float] = ..., num_servers: _Optional[int] = ..., server_index: _Optional[int] = ..., min_clients: _Optional[int] = ..., model: _Optional[bytes] = ...) -> None: ...

class SubmitRequest(_message.Message):
    __slots__ = ("round", "nonce", "num_elements", "ring_bits", "seed", "vector")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    NUM_ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    RING_BITS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    round: int
    nonce: bytes
    num_elements: int
    ring_bits: int
    seed: bytes
    vector: bytes
    def __init__(self, round: _Optional[int] = ..., nonce: _Optional[bytes] = ..., num_elements: _Optional[int] = ..., ring_bits: _Optional[int] = ..., seed: _Optional[bytes] = ..., vector: _Optional[bytes] = ...) -> None: ...

class SubmitReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InferRequest(_message.Message):
    __slots__ = ("query_id", "model", "shape", "frac_bits", "seed", "vector")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    FRAC_BITS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    query_id: bytes
    model: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    frac_bits: int
    seed: bytes
    vector: bytes
    def __init__(self, query_id: _Optional[bytes] = ..., model: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., frac_bits: _Optional[int] = ..., seed: _Optional[bytes] = ..., vector: _Optional[bytes] = ...) -> None: ...

class InferReply(_message.Message):
    __slots__ = ("query_id", "shape", "frac_bits", "share")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    FRAC_BITS_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    query_id: bytes
    shape: _containers.RepeatedScalarFieldContainer[int]
    frac_bits: int
    share: bytes
    def __init__(self, query_id: _Optional[bytes] = ..., shape: _Optional[_Iterable[int]] = ..., frac_bits: _Optional[int] = ..., share: _Optional[bytes] = ...) -> None: ...
