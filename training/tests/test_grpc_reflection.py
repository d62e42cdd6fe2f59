"""`taste serve`'s gRPC reflection, seen by a client that is not grpc-js (grpcio + grpcio-reflection).

The reflected FileDescriptorProtos must be what protoc (grpcio-tools) compiles from the same .proto
files, field by field: file names, messages, field names, numbers, types, labels and json_name. A
client that builds its stubs from reflection alone must then be able to call GetUserEmbedding with
the contract's snake_case `user_id`.

Needs the built CLI (`npm run build`) and the local Redis (`bash deploy/local/services.sh start`),
as `npm test` provides; skips with the reason when either is missing.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "dist" / "cli" / "main.js"
MODEL = ROOT / "models" / "default"
REDIS_URL = os.environ.get("TASTE_REDIS_URL", "redis://127.0.0.1:36379")
USER = "user-2985"  # the README's example user

SERVICES = {
    "taste.v1.EmbeddingService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
}

# The .proto files the server reads, by the name protoc gives each from its include root. health.proto
# sits at health/v1/ in grpc-health-check but is published under its canonical grpc/health/v1/ name.
PROTO_FILES = {
    "taste/v1/embedding_service.proto": ROOT / "proto" / "taste" / "v1" / "embedding_service.proto",
    "taste/v1/events.proto": ROOT / "proto" / "taste" / "v1" / "events.proto",  # imported by the service
    "grpc/health/v1/health.proto": ROOT / "node_modules" / "grpc-health-check" / "proto" / "health" / "v1" / "health.proto",
    "grpc/reflection/v1/reflection.proto": ROOT / "node_modules" / "@grpc" / "reflection" / "build" / "proto" / "grpc" / "reflection" / "v1" / "reflection.proto",
    "grpc/reflection/v1alpha/reflection.proto": ROOT / "node_modules" / "@grpc" / "reflection" / "build" / "proto" / "grpc" / "reflection" / "v1alpha" / "reflection.proto",
}

EVENTS = [
    {"type": "play", "userId": USER, "itemUri": "taste:track:12", "itemKind": "ITEM_KIND_TRACK",
     "eventTimeMs": 1767571531757, "msPlayed": 200830, "itemDurationMs": 491985,
     "context": "PLAY_CONTEXT_PLAYLIST", "endReason": "END_REASON_COMPLETED"},
    {"type": "search", "userId": USER, "query": "daft punk", "eventTimeMs": 1767571600000,
     "clickedItemUri": "taste:track:99", "clickedItemKind": "ITEM_KIND_TRACK"},
    {"type": "play", "userId": USER, "itemUri": "taste:track:99", "itemKind": "ITEM_KIND_TRACK",
     "eventTimeMs": 1767571700000, "msPlayed": 180000, "itemDurationMs": 180000,
     "context": "PLAY_CONTEXT_SEARCH", "endReason": "END_REASON_COMPLETED"},
]


def _redis_answers() -> bool:
    url = urlparse(REDIS_URL)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379), timeout=2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`taste serve` on a free port, over a key prefix of its own that `taste backfill` filled with USER."""
    if not CLI.exists():
        pytest.skip(f"{CLI} is not built: run `npm run build`")
    if not _redis_answers():
        pytest.skip(f"no Redis at {REDIS_URL}: run `bash deploy/local/services.sh start`")
    work = tmp_path_factory.mktemp("reflection")
    events = work / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    prefix = f"test-py-reflection-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "TASTE_REDIS_URL": REDIS_URL}
    subprocess.run(["node", str(CLI), "backfill", "--model", str(MODEL), "--key-prefix", prefix, "--fail-fast",
                    "--log-level", "warn", str(events)], cwd=ROOT, env=env, check=True, timeout=120,
                   capture_output=True)
    serve = subprocess.Popen(["node", str(CLI), "serve", "--model", str(MODEL), "--key-prefix", prefix,
                              "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0"],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in serve.stdout], daemon=True).start()
    try:
        port, seen, deadline = None, [], time.monotonic() + 60
        while port is None:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"taste serve did not say it was listening within 60 s: {''.join(seen)[-2000:]}")
            seen.append(line)
            if '"msg":"listening"' in line:
                port = json.loads(line)["port"]
        address = f"127.0.0.1:{port}"
        with grpc.insecure_channel(address) as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
            yield channel
    finally:
        serve.terminate()
        try:
            serve.wait(timeout=15)
        except subprocess.TimeoutExpired:
            serve.kill()


def _reflect(channel, version: str, **request) -> reflection_pb2.ServerReflectionResponse:
    # v1 and v1alpha are the same messages under two package names, so v1alpha's classes speak both.
    info = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    responses = list(info(iter([reflection_pb2.ServerReflectionRequest(**request)]), timeout=10))
    assert len(responses) == 1
    assert not responses[0].HasField("error_response"), responses[0].error_response
    return responses[0]


def _reflected_files(channel, version: str) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """Every file reflection hands out for the listed services, with their imports."""
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    listed = _reflect(channel, version, list_services="*").list_services_response.service
    for service in listed:
        response = _reflect(channel, version, file_containing_symbol=service.name)
        for raw in response.file_descriptor_response.file_descriptor_proto:
            proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
            files[proto.name] = proto
    return files


@pytest.fixture(scope="module")
def protoc_files(tmp_path_factory) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """protoc's descriptors of the same sources, laid out under the names they are published by."""
    tree = tmp_path_factory.mktemp("protos")
    for name, source in PROTO_FILES.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, tree / name)
    out = tree / "set.binpb"
    rc = protoc.main(["grpc_tools.protoc", f"-I{tree}", f"--descriptor_set_out={out}", "--include_imports",
                      *PROTO_FILES])
    assert rc == 0, "protoc failed"
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return {file.name: file for file in descriptor_set.file}


def _schema(file: descriptor_pb2.FileDescriptorProto) -> dict[str, tuple]:
    """One row per message, field, oneof, enum value and method: what a dynamic client builds from."""
    label = descriptor_pb2.FieldDescriptorProto.Label.Name
    kind = descriptor_pb2.FieldDescriptorProto.Type.Name
    rows: dict[str, tuple] = {"file": (file.name, file.package, file.syntax, tuple(file.dependency))}

    def messages(scope: str, types) -> None:
        for message in types:
            name = f"{scope}.{message.name}"
            rows[name] = ("message", message.options.map_entry, [o.name for o in message.oneof_decl])
            for field in message.field:
                rows[f"{name}.{field.name}"] = (
                    field.number, kind(field.type), label(field.label), field.type_name, field.json_name,
                    field.oneof_index if field.HasField("oneof_index") else None, field.proto3_optional,
                    json_format.MessageToDict(field.options),
                )
            messages(name, message.nested_type)
            enums(name, message.enum_type)

    def enums(scope: str, types) -> None:
        for enum in types:
            for value in enum.value:
                rows[f"{scope}.{enum.name}.{value.name}"] = ("enum value", value.number)

    messages(file.package, file.message_type)
    enums(file.package, file.enum_type)
    for service in file.service:
        for method in service.method:
            rows[f"{file.package}.{service.name}/{method.name}"] = (
                method.input_type, method.output_type, method.client_streaming, method.server_streaming)
    return rows


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_lists_every_service_including_reflection_itself(server, version):
    listed = _reflect(server, version, list_services="*").list_services_response.service
    assert {service.name for service in listed} == SERVICES


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_reflected_files_are_what_protoc_compiles(server, protoc_files, version):
    reflected = _reflected_files(server, version)
    assert sorted(reflected) == sorted(protoc_files)
    for name, expected in protoc_files.items():
        assert _schema(reflected[name]) == _schema(expected), name
        # Everything else too (file options, reserved ranges, ...): equal as messages.
        assert reflected[name] == expected, name
        by_name = _reflect(server, version, file_by_filename=name).file_descriptor_response.file_descriptor_proto
        assert descriptor_pb2.FileDescriptorProto.FromString(by_name[0]) == expected, name


def test_the_contract_field_names_are_snake_case_with_camel_case_json(server):
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(server))
    request = pool.FindMessageTypeByName("taste.v1.GetUserEmbeddingRequest")
    assert [(f.name, f.json_name) for f in request.fields] == [("user_id", "userId"), ("model_version", "modelVersion")]
    assert pool.FindFileContainingSymbol("taste.v1.EmbeddingService").name == "taste/v1/embedding_service.proto"


def test_stubs_built_from_reflection_alone_call_get_user_embedding(server):
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(server))
    method = pool.FindServiceByName("taste.v1.EmbeddingService").FindMethodByName("GetUserEmbedding")
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    call = server.unary_unary("/taste.v1.EmbeddingService/GetUserEmbedding",
                              request_serializer=request_class.SerializeToString,
                              response_deserializer=response_class.FromString)

    # The README's request body, parsed as grpcurl does: by the reflected names.
    response = call(json_format.Parse('{"user_id": "%s"}' % USER, request_class()), timeout=10)
    embedding = response.embedding
    # Independent expectations: the events written above, and the model's item table (rows × D float32).
    items = len((MODEL / "items.tsv").read_text().splitlines())
    dim = (MODEL / "item_embeddings.f32").stat().st_size // 4 // items
    assert embedding.user_id == USER
    assert embedding.dimension == dim == len(embedding.vector)
    assert embedding.events_in_window == len(EVENTS)
    assert embedding.last_event_time_ms == max(e["eventTimeMs"] for e in EVENTS)
    assert abs(sum(x * x for x in embedding.vector) - 1) < 1e-4  # L2-normalised, as the contract says

    with pytest.raises(grpc.RpcError) as missing:
        call(request_class(user_id="user-nobody-" + uuid.uuid4().hex[:8]), timeout=10)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_through_reflected_stubs(server):
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(server))
    method = pool.FindServiceByName("grpc.health.v1.Health").FindMethodByName("Check")
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    check = server.unary_unary("/grpc.health.v1.Health/Check", request_serializer=request_class.SerializeToString,
                               response_deserializer=response_class.FromString)
    deadline = time.monotonic() + 15
    while True:  # NOT_SERVING until the server's first Redis probe answers
        status = check(request_class(service="taste.v1.EmbeddingService"), timeout=5).status
        if status == method.output_type.enum_types_by_name["ServingStatus"].values_by_name["SERVING"].number:
            break
        assert time.monotonic() < deadline, f"health stayed {status}"
        time.sleep(0.2)


# A contract that uses more of proto3 than today's files do, so that the next field added to
# embedding_service.proto is published as protoc would compile it (imports, nested and map types,
# oneofs, proto3 optional, reserved ranges, enum aliases, options, streaming).
FIXTURE_PROTOS = {
    "acme/common/v2/types.proto": """
syntax = "proto3";
package acme.common.v2;
option java_package = "com.acme.common.v2";
enum Kind { option allow_alias = true; KIND_UNSPECIFIED = 0; KIND_TRACK = 1; KIND_SONG = 1 [deprecated = true]; reserved 7, 9 to 11; reserved "KIND_OLD"; }
message Item { string item_uri = 1; Kind kind = 2; }
""",
    "acme/rank/v2/rank.proto": """
syntax = "proto3";
package acme.rank.v2;
import "acme/common/v2/types.proto";
option go_package = "example.com/acme/rank/v2";
option optimize_for = SPEED;
message ScoreRequest {
  reserved 4, 6 to 8;
  reserved "old_field";
  message Candidate { acme.common.v2.Item item = 1; double prior__weight = 2; }
  string user_id = 1;
  repeated Candidate candidates = 2;
  optional uint32 top_k = 3;
  map<string, int64> feature_counts_by_name = 5;
  oneof filter { string only_kind = 9; bytes raw_filter = 10 [json_name = "rawFilterBytes"]; }
  repeated float weights = 11 [packed = true];
  repeated .acme.common.v2.Kind kinds = 12;
  sint64 s64 = 13; fixed32 f32 = 14; sfixed64 sf64 = 15; bool flag = 16 [deprecated = true];
  enum Mode { MODE_UNSPECIFIED = 0; MODE_FAST = 1; }
  Mode mode = 17;
}
message ScoreResponse { repeated float scores = 1; ScoreRequest.Candidate echo = 2; }
service Ranker {
  option deprecated = true;
  rpc Score(ScoreRequest) returns (ScoreResponse);
  rpc ScoreStream(stream ScoreRequest) returns (stream ScoreResponse) { option deprecated = true; }
}
""",
}

_BUILD_DESCRIPTORS = """
import { buildFileDescriptors } from %s;
const sources = JSON.parse(process.argv[1]);
console.log(JSON.stringify(buildFileDescriptors(sources).map((f) => Buffer.from(f.bytes).toString('base64'))));
"""


def test_the_descriptor_builder_matches_protoc_on_a_richer_contract(tmp_path):
    if not CLI.exists():
        pytest.skip(f"{CLI} is not built: run `npm run build`")
    for name, text in FIXTURE_PROTOS.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    out = tmp_path / "set.binpb"
    assert protoc.main(["grpc_tools.protoc", f"-I{tmp_path}", f"--descriptor_set_out={out}", *FIXTURE_PROTOS]) == 0
    expected = {f.name: f for f in descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file}

    module = json.dumps((ROOT / "dist" / "proto" / "file-descriptors.js").as_uri())
    sources = json.dumps([{"name": name, "path": str(tmp_path / name)} for name in FIXTURE_PROTOS])
    run = subprocess.run(["node", "--input-type=module", "-e", _BUILD_DESCRIPTORS % module, sources],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    built = [descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(b)) for b in json.loads(run.stdout)]
    assert [f.name for f in built] == list(FIXTURE_PROTOS)
    for file in built:
        assert _schema(file) == _schema(expected[file.name]), file.name
        assert file == expected[file.name], file.name
