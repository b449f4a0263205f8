from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CniRequest(_message.Message):
    __slots__ = ("container_id", "netns", "ifname", "args", "config", "prev_result")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    NETNS_FIELD_NUMBER: _ClassVar[int]
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    PREV_RESULT_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    netns: str
    ifname: str
    args: str
    config: bytes
    prev_result: bytes
    def __init__(self, container_id: _Optional[str] = ..., netns: _Optional[str] = ..., ifname: _Optional[str] = ..., args: _Optional[str] = ..., config: _Optional[bytes] = ..., prev_result: _Optional[bytes] = ...) -> None: ...

class CniError(_message.Message):
    __slots__ = ("code", "msg", "details")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MSG_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    code: int
    msg: str
    details: str
    def __init__(self, code: _Optional[int] = ..., msg: _Optional[str] = ..., details: _Optional[str] = ...) -> None: ...

class AddReply(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: CniError
    result: bytes
    def __init__(self, error: _Optional[_Union[CniError, _Mapping]] = ..., result: _Optional[bytes] = ...) -> None: ...

class CniReply(_message.Message):
    __slots__ = ("error",)
    ERROR_FIELD_NUMBER: _ClassVar[int]
    error: CniError
    def __init__(self, error: _Optional[_Union[CniError, _Mapping]] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: bytes
    def __init__(self, config: _Optional[bytes] = ...) -> None: ...

class Attachment(_message.Message):
    __slots__ = ("container_id", "ifname")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    ifname: str
    def __init__(self, container_id: _Optional[str] = ..., ifname: _Optional[str] = ...) -> None: ...

class GcRequest(_message.Message):
    __slots__ = ("config", "valid_attachments")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    VALID_ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    config: bytes
    valid_attachments: _containers.RepeatedCompositeFieldContainer[Attachment]
    def __init__(self, config: _Optional[bytes] = ..., valid_attachments: _Optional[_Iterable[_Union[Attachment, _Mapping]]] = ...) -> None: ...
