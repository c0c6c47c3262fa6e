from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

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

class SecAggStateRequest(_message.Message):
    __slots__ = ("round", "known_stage", "wait_ms")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    KNOWN_STAGE_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    round: int
    known_stage: str
    wait_ms: int
    def __init__(self, round: _Optional[int] = ..., known_stage: _Optional[str] = ..., wait_ms: _Optional[int] = ...) -> None: ...

class NeighbourKey(_message.Message):
    __slots__ = ("index", "cipher_public", "mask_public")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CIPHER_PUBLIC_FIELD_NUMBER: _ClassVar[int]
    MASK_PUBLIC_FIELD_NUMBER: _ClassVar[int]
    index: int
    cipher_public: bytes
    mask_public: bytes
    def __init__(self, index: _Optional[int] = ..., cipher_public: _Optional[bytes] = ..., mask_public: _Optional[bytes] = ...) -> None: ...

class EncryptedShare(_message.Message):
    __slots__ = ("sender", "receiver", "sealed")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    sender: int
    receiver: int
    sealed: bytes
    def __init__(self, sender: _Optional[int] = ..., receiver: _Optional[int] = ..., sealed: _Optional[bytes] = ...) -> None: ...

class SecAggStateReply(_message.Message):
    __slots__ = ("round", "stage", "index", "threshold", "neighbours", "shared", "inbox", "survivors", "dropped", "failure")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    NEIGHBOURS_FIELD_NUMBER: _ClassVar[int]
    SHARED_FIELD_NUMBER: _ClassVar[int]
    INBOX_FIELD_NUMBER: _ClassVar[int]
    SURVIVORS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    round: int
    stage: str
    index: int
    threshold: int
    neighbours: _containers.RepeatedCompositeFieldContainer[NeighbourKey]
    shared: _containers.RepeatedScalarFieldContainer[int]
    inbox: _containers.RepeatedCompositeFieldContainer[EncryptedShare]
    survivors: _containers.RepeatedScalarFieldContainer[int]
    dropped: _containers.RepeatedScalarFieldContainer[int]
    failure: str
    def __init__(self, round: _Optional[int] = ..., stage: _Optional[str] = ..., index: _Optional[int] = ..., threshold: _Optional[int] = ..., neighbours: _Optional[_Iterable[_Union[NeighbourKey, _Mapping]]] = ..., shared: _Optional[_Iterable[int]] = ..., inbox: _Optional[_Iterable[_Union[EncryptedShare, _Mapping]]] = ..., survivors: _Optional[_Iterable[int]] = ..., dropped: _Optional[_Iterable[int]] = ..., failure: _Optional[str] = ...) -> None: ...

class AdvertiseRequest(_message.Message):
    __slots__ = ("round", "cipher_public", "mask_public")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    CIPHER_PUBLIC_FIELD_NUMBER: _ClassVar[int]
    MASK_PUBLIC_FIELD_NUMBER: _ClassVar[int]
    round: int
    cipher_public: bytes
    mask_public: bytes
    def __init__(self, round: _Optional[int] = ..., cipher_public: _Optional[bytes] = ..., mask_public: _Optional[bytes] = ...) -> None: ...

class ShareKeysRequest(_message.Message):
    __slots__ = ("round", "seed_commitment", "shares")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    SEED_COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    round: int
    seed_commitment: bytes
    shares: _containers.RepeatedCompositeFieldContainer[EncryptedShare]
    def __init__(self, round: _Optional[int] = ..., seed_commitment: _Optional[bytes] = ..., shares: _Optional[_Iterable[_Union[EncryptedShare, _Mapping]]] = ...) -> None: ...

class MaskedInputRequest(_message.Message):
    __slots__ = ("round", "num_elements", "ring_bits", "vector", "complaints")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    NUM_ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    RING_BITS_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    COMPLAINTS_FIELD_NUMBER: _ClassVar[int]
    round: int
    num_elements: int
    ring_bits: int
    vector: bytes
    complaints: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, round: _Optional[int] = ..., num_elements: _Optional[int] = ..., ring_bits: _Optional[int] = ..., vector: _Optional[bytes] = ..., complaints: _Optional[_Iterable[int]] = ...) -> None: ...

class IndexedShare(_message.Message):
    __slots__ = ("index", "share")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    index: int
    share: bytes
    def __init__(self, index: _Optional[int] = ..., share: _Optional[bytes] = ...) -> None: ...

class UnmaskRequest(_message.Message):
    __slots__ = ("round", "seed_shares", "key_shares")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    SEED_SHARES_FIELD_NUMBER: _ClassVar[int]
    KEY_SHARES_FIELD_NUMBER: _ClassVar[int]
    round: int
    seed_shares: _containers.RepeatedCompositeFieldContainer[IndexedShare]
    key_shares: _containers.RepeatedCompositeFieldContainer[IndexedShare]
    def __init__(self, round: _Optional[int] = ..., seed_shares: _Optional[_Iterable[_Union[IndexedShare, _Mapping]]] = ..., key_shares: _Optional[_Iterable[_Union[IndexedShare, _Mapping]]] = ...) -> None: ...

class SecAggAck(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
