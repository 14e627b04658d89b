from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DTYPE_UNSPECIFIED: _ClassVar[DType]
    DTYPE_F32: _ClassVar[DType]
    DTYPE_F16: _ClassVar[DType]
    DTYPE_BF16: _ClassVar[DType]
    DTYPE_F64: _ClassVar[DType]

class TaskKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_KIND_UNSPECIFIED: _ClassVar[TaskKind]
    TASK_KIND_MERGE_MODULE: _ClassVar[TaskKind]
    TASK_KIND_KMEANS_BLOCK_STEP: _ClassVar[TaskKind]
    TASK_KIND_KMEANS_FIRST_CENTER: _ClassVar[TaskKind]
    TASK_KIND_KMEANS_OVERSAMPLE: _ClassVar[TaskKind]
    TASK_KIND_KMEANS_CANDIDATE_WEIGHTS: _ClassVar[TaskKind]
    TASK_KIND_KMEANS_LLOYD: _ClassVar[TaskKind]
    TASK_KIND_KMEANS_REWEIGHT: _ClassVar[TaskKind]
    TASK_KIND_KMEANS_PRODUCT: _ClassVar[TaskKind]
    TASK_KIND_KMEANS_PRINCIPAL: _ClassVar[TaskKind]
    TASK_KIND_KMEANS_DRAW: _ClassVar[TaskKind]

class InputMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INPUT_MODE_UNSPECIFIED: _ClassVar[InputMode]
    INPUT_MODE_SHARED: _ClassVar[InputMode]
    INPUT_MODE_INLINE: _ClassVar[InputMode]

class PeerRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PEER_ROLE_MERGE_WORKER: _ClassVar[PeerRole]
    PEER_ROLE_EVALUATOR: _ClassVar[PeerRole]

class EvalKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVAL_KIND_UNSPECIFIED: _ClassVar[EvalKind]
    EVAL_KIND_LOSS: _ClassVar[EvalKind]
    EVAL_KIND_LOSS_AND_ACCURACY: _ClassVar[EvalKind]
    EVAL_KIND_GRADIENT: _ClassVar[EvalKind]
DTYPE_UNSPECIFIED: DType
DTYPE_F32: DType
DTYPE_F16: DType
DTYPE_BF16: DType
DTYPE_F64: DType
TASK_KIND_UNSPECIFIED: TaskKind
TASK_KIND_MERGE_MODULE: TaskKind
TASK_KIND_KMEANS_BLOCK_STEP: TaskKind
TASK_KIND_KMEANS_FIRST_CENTER: TaskKind
TASK_KIND_KMEANS_OVERSAMPLE: TaskKind
TASK_KIND_KMEANS_CANDIDATE_WEIGHTS: TaskKind
TASK_KIND_KMEANS_LLOYD: TaskKind
TASK_KIND_KMEANS_REWEIGHT: TaskKind
TASK_KIND_KMEANS_PRODUCT: TaskKind
TASK_KIND_KMEANS_PRINCIPAL: TaskKind
TASK_KIND_KMEANS_DRAW: TaskKind
INPUT_MODE_UNSPECIFIED: InputMode
INPUT_MODE_SHARED: InputMode
INPUT_MODE_INLINE: InputMode
PEER_ROLE_MERGE_WORKER: PeerRole
PEER_ROLE_EVALUATOR: PeerRole
EVAL_KIND_UNSPECIFIED: EvalKind
EVAL_KIND_LOSS: EvalKind
EVAL_KIND_LOSS_AND_ACCURACY: EvalKind
EVAL_KIND_GRADIENT: EvalKind

class Hello(_message.Message):
    __slots__ = ("worker_id", "version", "cores", "blas_threads", "pid", "hostname", "role", "device", "dtype")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CORES_FIELD_NUMBER: _ClassVar[int]
    BLAS_THREADS_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    version: str
    cores: int
    blas_threads: int
    pid: int
    hostname: str
    role: PeerRole
    device: str
    dtype: str
    def __init__(self, worker_id: _Optional[str] = ..., version: _Optional[str] = ..., cores: _Optional[int] = ..., blas_threads: _Optional[int] = ..., pid: _Optional[int] = ..., hostname: _Optional[str] = ..., role: _Optional[_Union[PeerRole, str]] = ..., device: _Optional[str] = ..., dtype: _Optional[str] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("job_id", "heartbeat_interval_ms", "heartbeat_liveness", "base_model_path")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_LIVENESS_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_PATH_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    heartbeat_interval_ms: int
    heartbeat_liveness: int
    base_model_path: str
    def __init__(self, job_id: _Optional[str] = ..., heartbeat_interval_ms: _Optional[int] = ..., heartbeat_liveness: _Optional[int] = ..., base_model_path: _Optional[str] = ...) -> None: ...

class Reject(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("sequence",)
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    def __init__(self, sequence: _Optional[int] = ...) -> None: ...

class InputRef(_message.Message):
    __slots__ = ("path_index", "coefficient", "rank", "a_dtype", "a_offset", "a_length", "b_dtype", "b_offset", "b_length", "fan_in_fan_out")
    PATH_INDEX_FIELD_NUMBER: _ClassVar[int]
    COEFFICIENT_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    A_DTYPE_FIELD_NUMBER: _ClassVar[int]
    A_OFFSET_FIELD_NUMBER: _ClassVar[int]
    A_LENGTH_FIELD_NUMBER: _ClassVar[int]
    B_DTYPE_FIELD_NUMBER: _ClassVar[int]
    B_OFFSET_FIELD_NUMBER: _ClassVar[int]
    B_LENGTH_FIELD_NUMBER: _ClassVar[int]
    FAN_IN_FAN_OUT_FIELD_NUMBER: _ClassVar[int]
    path_index: int
    coefficient: float
    rank: int
    a_dtype: DType
    a_offset: int
    a_length: int
    b_dtype: DType
    b_offset: int
    b_length: int
    fan_in_fan_out: bool
    def __init__(self, path_index: _Optional[int] = ..., coefficient: _Optional[float] = ..., rank: _Optional[int] = ..., a_dtype: _Optional[_Union[DType, str]] = ..., a_offset: _Optional[int] = ..., a_length: _Optional[int] = ..., b_dtype: _Optional[_Union[DType, str]] = ..., b_offset: _Optional[int] = ..., b_length: _Optional[int] = ..., fan_in_fan_out: _Optional[bool] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("job_id", "task_id", "attempt", "kind", "module", "method", "options_json", "rank", "seed", "out_features", "in_features", "input_mode", "paths", "inputs", "block_index", "block_count", "result_chunk_bytes")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_JSON_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    OUT_FEATURES_FIELD_NUMBER: _ClassVar[int]
    IN_FEATURES_FIELD_NUMBER: _ClassVar[int]
    INPUT_MODE_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_INDEX_FIELD_NUMBER: _ClassVar[int]
    BLOCK_COUNT_FIELD_NUMBER: _ClassVar[int]
    RESULT_CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    task_id: int
    attempt: int
    kind: TaskKind
    module: str
    method: str
    options_json: str
    rank: int
    seed: int
    out_features: int
    in_features: int
    input_mode: InputMode
    paths: _containers.RepeatedScalarFieldContainer[str]
    inputs: _containers.RepeatedCompositeFieldContainer[InputRef]
    block_index: int
    block_count: int
    result_chunk_bytes: int
    def __init__(self, job_id: _Optional[str] = ..., task_id: _Optional[int] = ..., attempt: _Optional[int] = ..., kind: _Optional[_Union[TaskKind, str]] = ..., module: _Optional[str] = ..., method: _Optional[str] = ..., options_json: _Optional[str] = ..., rank: _Optional[int] = ..., seed: _Optional[int] = ..., out_features: _Optional[int] = ..., in_features: _Optional[int] = ..., input_mode: _Optional[_Union[InputMode, str]] = ..., paths: _Optional[_Iterable[str]] = ..., inputs: _Optional[_Iterable[_Union[InputRef, _Mapping]]] = ..., block_index: _Optional[int] = ..., block_count: _Optional[int] = ..., result_chunk_bytes: _Optional[int] = ...) -> None: ...

class InputChunk(_message.Message):
    __slots__ = ("task_id", "attempt", "input_index", "factor", "sequence", "total", "payload", "crc32c")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    INPUT_INDEX_FIELD_NUMBER: _ClassVar[int]
    FACTOR_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    CRC32C_FIELD_NUMBER: _ClassVar[int]
    task_id: int
    attempt: int
    input_index: int
    factor: int
    sequence: int
    total: int
    payload: bytes
    crc32c: int
    def __init__(self, task_id: _Optional[int] = ..., attempt: _Optional[int] = ..., input_index: _Optional[int] = ..., factor: _Optional[int] = ..., sequence: _Optional[int] = ..., total: _Optional[int] = ..., payload: _Optional[bytes] = ..., crc32c: _Optional[int] = ...) -> None: ...

class ResultChunk(_message.Message):
    __slots__ = ("task_id", "attempt", "sequence", "total", "payload", "crc32c")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    CRC32C_FIELD_NUMBER: _ClassVar[int]
    task_id: int
    attempt: int
    sequence: int
    total: int
    payload: bytes
    crc32c: int
    def __init__(self, task_id: _Optional[int] = ..., attempt: _Optional[int] = ..., sequence: _Optional[int] = ..., total: _Optional[int] = ..., payload: _Optional[bytes] = ..., crc32c: _Optional[int] = ...) -> None: ...

class TaskDone(_message.Message):
    __slots__ = ("task_id", "attempt", "out_rank", "result_bytes", "result_crc32c", "stats_json", "seconds")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    OUT_RANK_FIELD_NUMBER: _ClassVar[int]
    RESULT_BYTES_FIELD_NUMBER: _ClassVar[int]
    RESULT_CRC32C_FIELD_NUMBER: _ClassVar[int]
    STATS_JSON_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    task_id: int
    attempt: int
    out_rank: int
    result_bytes: int
    result_crc32c: int
    stats_json: str
    seconds: float
    def __init__(self, task_id: _Optional[int] = ..., attempt: _Optional[int] = ..., out_rank: _Optional[int] = ..., result_bytes: _Optional[int] = ..., result_crc32c: _Optional[int] = ..., stats_json: _Optional[str] = ..., seconds: _Optional[float] = ...) -> None: ...

class TaskFailed(_message.Message):
    __slots__ = ("task_id", "attempt", "error", "retryable", "missing_payload")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    MISSING_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    task_id: int
    attempt: int
    error: str
    retryable: bool
    missing_payload: int
    def __init__(self, task_id: _Optional[int] = ..., attempt: _Optional[int] = ..., error: _Optional[str] = ..., retryable: _Optional[bool] = ..., missing_payload: _Optional[int] = ...) -> None: ...

class Disconnect(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class Example(_message.Message):
    __slots__ = ("id", "prompt", "completion", "messages_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_JSON_FIELD_NUMBER: _ClassVar[int]
    id: int
    prompt: str
    completion: str
    messages_json: str
    def __init__(self, id: _Optional[int] = ..., prompt: _Optional[str] = ..., completion: _Optional[str] = ..., messages_json: _Optional[str] = ...) -> None: ...

class AdapterRef(_message.Message):
    __slots__ = ("path", "content_hash")
    PATH_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    path: str
    content_hash: str
    def __init__(self, path: _Optional[str] = ..., content_hash: _Optional[str] = ...) -> None: ...

class EvalRequest(_message.Message):
    __slots__ = ("job_id", "request_id", "attempt", "kind", "adapters", "modules", "coefficients", "examples", "max_new_tokens")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ADAPTERS_FIELD_NUMBER: _ClassVar[int]
    MODULES_FIELD_NUMBER: _ClassVar[int]
    COEFFICIENTS_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    MAX_NEW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    request_id: int
    attempt: int
    kind: EvalKind
    adapters: _containers.RepeatedCompositeFieldContainer[AdapterRef]
    modules: _containers.RepeatedScalarFieldContainer[str]
    coefficients: _containers.RepeatedScalarFieldContainer[float]
    examples: _containers.RepeatedCompositeFieldContainer[Example]
    max_new_tokens: int
    def __init__(self, job_id: _Optional[str] = ..., request_id: _Optional[int] = ..., attempt: _Optional[int] = ..., kind: _Optional[_Union[EvalKind, str]] = ..., adapters: _Optional[_Iterable[_Union[AdapterRef, _Mapping]]] = ..., modules: _Optional[_Iterable[str]] = ..., coefficients: _Optional[_Iterable[float]] = ..., examples: _Optional[_Iterable[_Union[Example, _Mapping]]] = ..., max_new_tokens: _Optional[int] = ...) -> None: ...

class EvalResult(_message.Message):
    __slots__ = ("request_id", "attempt", "loss_sum", "token_count", "example_ids", "example_losses", "example_tokens", "example_correct", "gradient", "seconds")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    LOSS_SUM_FIELD_NUMBER: _ClassVar[int]
    TOKEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_IDS_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_LOSSES_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_CORRECT_FIELD_NUMBER: _ClassVar[int]
    GRADIENT_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    attempt: int
    loss_sum: float
    token_count: int
    example_ids: _containers.RepeatedScalarFieldContainer[int]
    example_losses: _containers.RepeatedScalarFieldContainer[float]
    example_tokens: _containers.RepeatedScalarFieldContainer[int]
    example_correct: _containers.RepeatedScalarFieldContainer[bool]
    gradient: _containers.RepeatedScalarFieldContainer[float]
    seconds: float
    def __init__(self, request_id: _Optional[int] = ..., attempt: _Optional[int] = ..., loss_sum: _Optional[float] = ..., token_count: _Optional[int] = ..., example_ids: _Optional[_Iterable[int]] = ..., example_losses: _Optional[_Iterable[float]] = ..., example_tokens: _Optional[_Iterable[int]] = ..., example_correct: _Optional[_Iterable[bool]] = ..., gradient: _Optional[_Iterable[float]] = ..., seconds: _Optional[float] = ...) -> None: ...

class EvalFailed(_message.Message):
    __slots__ = ("request_id", "attempt", "error", "retryable")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    attempt: int
    error: str
    retryable: bool
    def __init__(self, request_id: _Optional[int] = ..., attempt: _Optional[int] = ..., error: _Optional[str] = ..., retryable: _Optional[bool] = ...) -> None: ...

class KMeansBlockTask(_message.Message):
    __slots__ = ("task", "round", "unit_id_offset", "center_count", "centers", "oversampling", "farthest", "center_offset", "nearest", "inputs_follow", "product", "probes", "principal", "assignment", "payload_id", "payload_crc32c", "cost")
    TASK_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    UNIT_ID_OFFSET_FIELD_NUMBER: _ClassVar[int]
    CENTER_COUNT_FIELD_NUMBER: _ClassVar[int]
    CENTERS_FIELD_NUMBER: _ClassVar[int]
    OVERSAMPLING_FIELD_NUMBER: _ClassVar[int]
    FARTHEST_FIELD_NUMBER: _ClassVar[int]
    CENTER_OFFSET_FIELD_NUMBER: _ClassVar[int]
    NEAREST_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FOLLOW_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    PROBES_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_CRC32C_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    task: Task
    round: int
    unit_id_offset: int
    center_count: int
    centers: bytes
    oversampling: float
    farthest: int
    center_offset: int
    nearest: bytes
    inputs_follow: bool
    product: int
    probes: int
    principal: int
    assignment: bytes
    payload_id: int
    payload_crc32c: int
    cost: float
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ..., round: _Optional[int] = ..., unit_id_offset: _Optional[int] = ..., center_count: _Optional[int] = ..., centers: _Optional[bytes] = ..., oversampling: _Optional[float] = ..., farthest: _Optional[int] = ..., center_offset: _Optional[int] = ..., nearest: _Optional[bytes] = ..., inputs_follow: _Optional[bool] = ..., product: _Optional[int] = ..., probes: _Optional[int] = ..., principal: _Optional[int] = ..., assignment: _Optional[bytes] = ..., payload_id: _Optional[int] = ..., payload_crc32c: _Optional[int] = ..., cost: _Optional[float] = ...) -> None: ...

class RoundPayload(_message.Message):
    __slots__ = ("payload_id", "module", "track", "centers", "crc32c")
    PAYLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    TRACK_FIELD_NUMBER: _ClassVar[int]
    CENTERS_FIELD_NUMBER: _ClassVar[int]
    CRC32C_FIELD_NUMBER: _ClassVar[int]
    payload_id: int
    module: str
    track: int
    centers: bytes
    crc32c: int
    def __init__(self, payload_id: _Optional[int] = ..., module: _Optional[str] = ..., track: _Optional[int] = ..., centers: _Optional[bytes] = ..., crc32c: _Optional[int] = ...) -> None: ...

class Envelope(_message.Message):
    __slots__ = ("protocol_version", "hello", "welcome", "reject", "heartbeat", "task", "input_chunk", "result_chunk", "task_done", "task_failed", "disconnect", "eval_request", "eval_result", "eval_failed", "kmeans_block_task", "round_payload")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    HELLO_FIELD_NUMBER: _ClassVar[int]
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    REJECT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    INPUT_CHUNK_FIELD_NUMBER: _ClassVar[int]
    RESULT_CHUNK_FIELD_NUMBER: _ClassVar[int]
    TASK_DONE_FIELD_NUMBER: _ClassVar[int]
    TASK_FAILED_FIELD_NUMBER: _ClassVar[int]
    DISCONNECT_FIELD_NUMBER: _ClassVar[int]
    EVAL_REQUEST_FIELD_NUMBER: _ClassVar[int]
    EVAL_RESULT_FIELD_NUMBER: _ClassVar[int]
    EVAL_FAILED_FIELD_NUMBER: _ClassVar[int]
    KMEANS_BLOCK_TASK_FIELD_NUMBER: _ClassVar[int]
    ROUND_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    hello: Hello
    welcome: Welcome
    reject: Reject
    heartbeat: Heartbeat
    task: Task
    input_chunk: InputChunk
    result_chunk: ResultChunk
    task_done: TaskDone
    task_failed: TaskFailed
    disconnect: Disconnect
    eval_request: EvalRequest
    eval_result: EvalResult
    eval_failed: EvalFailed
    kmeans_block_task: KMeansBlockTask
    round_payload: RoundPayload
    def __init__(self, protocol_version: _Optional[int] = ..., hello: _Optional[_Union[Hello, _Mapping]] = ..., welcome: _Optional[_Union[Welcome, _Mapping]] = ..., reject: _Optional[_Union[Reject, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., task: _Optional[_Union[Task, _Mapping]] = ..., input_chunk: _Optional[_Union[InputChunk, _Mapping]] = ..., result_chunk: _Optional[_Union[ResultChunk, _Mapping]] = ..., task_done: _Optional[_Union[TaskDone, _Mapping]] = ..., task_failed: _Optional[_Union[TaskFailed, _Mapping]] = ..., disconnect: _Optional[_Union[Disconnect, _Mapping]] = ..., eval_request: _Optional[_Union[EvalRequest, _Mapping]] = ..., eval_result: _Optional[_Union[EvalResult, _Mapping]] = ..., eval_failed: _Optional[_Union[EvalFailed, _Mapping]] = ..., kmeans_block_task: _Optional[_Union[KMeansBlockTask, _Mapping]] = ..., round_payload: _Optional[_Union[RoundPayload, _Mapping]] = ...) -> None: ...
