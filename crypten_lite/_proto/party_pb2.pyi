from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Envelope(_message.Message):
    __slots__ = ("session_id", "source", "destination", "tag", "dtype", "shape", "chunk_index", "chunk_count", "payload")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_INDEX_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    source: int
    destination: int
    tag: int
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    chunk_index: int
    chunk_count: int
    payload: bytes
    def __init__(self, session_id: _Optional[str] = ..., source: _Optional[int] = ..., destination: _Optional[int] = ..., tag: _Optional[int] = ..., dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., chunk_index: _Optional[int] = ..., chunk_count: _Optional[int] = ..., payload: _Optional[bytes] = ...) -> None: ...

class TransferSummary(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: int
    def __init__(self, messages: _Optional[int] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HelloRequest(_message.Message):
    __slots__ = ("session_id", "source", "world_size")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    WORLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    source: int
    world_size: int
    def __init__(self, session_id: _Optional[str] = ..., source: _Optional[int] = ..., world_size: _Optional[int] = ...) -> None: ...

class HelloReply(_message.Message):
    __slots__ = ("session_id", "rank", "world_size")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    WORLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    rank: int
    world_size: int
    def __init__(self, session_id: _Optional[str] = ..., rank: _Optional[int] = ..., world_size: _Optional[int] = ...) -> None: ...

class Notice(_message.Message):
    __slots__ = ("session_id", "source", "kind", "messages_sent", "reason")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[Notice.Kind]
        BYE: _ClassVar[Notice.Kind]
        ABORT: _ClassVar[Notice.Kind]
    KIND_UNSPECIFIED: Notice.Kind
    BYE: Notice.Kind
    ABORT: Notice.Kind
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_SENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    source: int
    kind: Notice.Kind
    messages_sent: int
    reason: str
    def __init__(self, session_id: _Optional[str] = ..., source: _Optional[int] = ..., kind: _Optional[_Union[Notice.Kind, str]] = ..., messages_sent: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...
