/*eslint-disable block-scoped-var, id-length, no-control-regex, no-magic-numbers, no-prototype-builtins, no-redeclare, no-shadow, no-var, sort-vars*/
"use strict";

var $protobuf = require("protobufjs/minimal");

var $Writer = $protobuf.Writer, $util = $protobuf.util;

var $root = $protobuf.roots["default"] || ($protobuf.roots["default"] = {});

$root.taste = (function() {

    var taste = {};

    taste.v1 = (function() {

        var v1 = {};

        v1.GetUserEmbeddingRequest = (function() {

            function GetUserEmbeddingRequest(properties) {
                if (properties)
                    for (var keys = Object.keys(properties), i = 0; i < keys.length; ++i)
                        if (properties[keys[i]] != null && keys[i] !== "__proto__")
                            this[keys[i]] = properties[keys[i]];
            }

            GetUserEmbeddingRequest.prototype.userId = "";
            GetUserEmbeddingRequest.prototype.modelVersion = "";

            GetUserEmbeddingRequest.create = function create(properties) {
                return new GetUserEmbeddingRequest(properties);
            };

            GetUserEmbeddingRequest.encode = function encode(message, writer, q) {
                if (!writer)
                    writer = $Writer.create();
                if (q === undefined)
                    q = 0;
                if (q > $util.recursionLimit)
                    throw Error("max depth exceeded");
                if (message.userId != null && Object.hasOwnProperty.call(message, "userId"))
                    writer.uint32(10).string(message.userId);
                if (message.modelVersion != null && Object.hasOwnProperty.call(message, "modelVersion"))
                    writer.uint32(18).string(message.modelVersion);
                return writer;
            };

            return GetUserEmbeddingRequest;
        })();

        v1.UserEmbedding = (function() {

            function UserEmbedding(properties) {
                this.vector = [];
                if (properties)
                    for (var keys = Object.keys(properties), i = 0; i < keys.length; ++i)
                        if (properties[keys[i]] != null && keys[i] !== "__proto__")
                            this[keys[i]] = properties[keys[i]];
            }

            UserEmbedding.prototype.userId = "";
            UserEmbedding.prototype.modelVersion = "";
            UserEmbedding.prototype.vector = $util.emptyArray;
            UserEmbedding.prototype.dimension = 0;
            UserEmbedding.prototype.updatedTimeMs = $util.Long ? $util.Long.fromBits(0,0,false) : 0;
            UserEmbedding.prototype.lastEventTimeMs = $util.Long ? $util.Long.fromBits(0,0,false) : 0;
            UserEmbedding.prototype.eventsInWindow = 0;

            UserEmbedding.create = function create(properties) {
                return new UserEmbedding(properties);
            };

            UserEmbedding.encode = function encode(message, writer, q) {
                if (!writer)
                    writer = $Writer.create();
                if (q === undefined)
                    q = 0;
                if (q > $util.recursionLimit)
                    throw Error("max depth exceeded");
                if (message.userId != null && Object.hasOwnProperty.call(message, "userId"))
                    writer.uint32(10).string(message.userId);
                if (message.modelVersion != null && Object.hasOwnProperty.call(message, "modelVersion"))
                    writer.uint32(18).string(message.modelVersion);
                if (message.vector != null && message.vector.length) {
                    writer.uint32(26).fork();
                    for (var i = 0; i < message.vector.length; ++i)
                        writer.float(message.vector[i]);
                    writer.ldelim();
                }
                if (message.dimension != null && Object.hasOwnProperty.call(message, "dimension"))
                    writer.uint32(32).uint32(message.dimension);
                if (message.updatedTimeMs != null && Object.hasOwnProperty.call(message, "updatedTimeMs"))
                    writer.uint32(40).int64(message.updatedTimeMs);
                if (message.lastEventTimeMs != null && Object.hasOwnProperty.call(message, "lastEventTimeMs"))
                    writer.uint32(48).int64(message.lastEventTimeMs);
                if (message.eventsInWindow != null && Object.hasOwnProperty.call(message, "eventsInWindow"))
                    writer.uint32(56).uint32(message.eventsInWindow);
                return writer;
            };

            return UserEmbedding;
        })();

        v1.GetUserEmbeddingResponse = (function() {

            function GetUserEmbeddingResponse(properties) {
                if (properties)
                    for (var keys = Object.keys(properties), i = 0; i < keys.length; ++i)
                        if (properties[keys[i]] != null && keys[i] !== "__proto__")
                            this[keys[i]] = properties[keys[i]];
            }

            GetUserEmbeddingResponse.prototype.embedding = null;

            GetUserEmbeddingResponse.create = function create(properties) {
                return new GetUserEmbeddingResponse(properties);
            };

            GetUserEmbeddingResponse.encode = function encode(message, writer, q) {
                if (!writer)
                    writer = $Writer.create();
                if (q === undefined)
                    q = 0;
                if (q > $util.recursionLimit)
                    throw Error("max depth exceeded");
                if (message.embedding != null && Object.hasOwnProperty.call(message, "embedding"))
                    $root.taste.v1.UserEmbedding.encode(message.embedding, writer.uint32(10).fork(), q + 1).ldelim();
                return writer;
            };

            return GetUserEmbeddingResponse;
        })();

        v1.BatchGetUserEmbeddingsRequest = (function() {

            function BatchGetUserEmbeddingsRequest(properties) {
                this.userIds = [];
                if (properties)
                    for (var keys = Object.keys(properties), i = 0; i < keys.length; ++i)
                        if (properties[keys[i]] != null && keys[i] !== "__proto__")
                            this[keys[i]] = properties[keys[i]];
            }

            BatchGetUserEmbeddingsRequest.prototype.userIds = $util.emptyArray;
            BatchGetUserEmbeddingsRequest.prototype.modelVersion = "";

            BatchGetUserEmbeddingsRequest.create = function create(properties) {
                return new BatchGetUserEmbeddingsRequest(properties);
            };

            BatchGetUserEmbeddingsRequest.encode = function encode(message, writer, q) {
                if (!writer)
                    writer = $Writer.create();
                if (q === undefined)
                    q = 0;
                if (q > $util.recursionLimit)
                    throw Error("max depth exceeded");
                if (message.userIds != null && message.userIds.length)
                    for (var i = 0; i < message.userIds.length; ++i)
                        writer.uint32(10).string(message.userIds[i]);
                if (message.modelVersion != null && Object.hasOwnProperty.call(message, "modelVersion"))
                    writer.uint32(18).string(message.modelVersion);
                return writer;
            };

            return BatchGetUserEmbeddingsRequest;
        })();

        v1.UserEmbeddingResult = (function() {

            function UserEmbeddingResult(properties) {
                if (properties)
                    for (var keys = Object.keys(properties), i = 0; i < keys.length; ++i)
                        if (properties[keys[i]] != null && keys[i] !== "__proto__")
                            this[keys[i]] = properties[keys[i]];
            }

            UserEmbeddingResult.prototype.userId = "";
            UserEmbeddingResult.prototype.embedding = null;
            UserEmbeddingResult.prototype.error = null;

            var $oneOfFields;

            Object.defineProperty(UserEmbeddingResult.prototype, "result", {
                get: $util.oneOfGetter($oneOfFields = ["embedding", "error"]),
                set: $util.oneOfSetter($oneOfFields)
            });

            UserEmbeddingResult.create = function create(properties) {
                return new UserEmbeddingResult(properties);
            };

            UserEmbeddingResult.encode = function encode(message, writer, q) {
                if (!writer)
                    writer = $Writer.create();
                if (q === undefined)
                    q = 0;
                if (q > $util.recursionLimit)
                    throw Error("max depth exceeded");
                if (message.userId != null && Object.hasOwnProperty.call(message, "userId"))
                    writer.uint32(10).string(message.userId);
                if (message.embedding != null && Object.hasOwnProperty.call(message, "embedding"))
                    $root.taste.v1.UserEmbedding.encode(message.embedding, writer.uint32(18).fork(), q + 1).ldelim();
                if (message.error != null && Object.hasOwnProperty.call(message, "error"))
                    $root.taste.v1.ResultError.encode(message.error, writer.uint32(26).fork(), q + 1).ldelim();
                return writer;
            };

            return UserEmbeddingResult;
        })();

        v1.ResultError = (function() {

            function ResultError(properties) {
                if (properties)
                    for (var keys = Object.keys(properties), i = 0; i < keys.length; ++i)
                        if (properties[keys[i]] != null && keys[i] !== "__proto__")
                            this[keys[i]] = properties[keys[i]];
            }

            ResultError.prototype.code = 0;
            ResultError.prototype.message = "";

            ResultError.create = function create(properties) {
                return new ResultError(properties);
            };

            ResultError.encode = function encode(message, writer, q) {
                if (!writer)
                    writer = $Writer.create();
                if (q === undefined)
                    q = 0;
                if (q > $util.recursionLimit)
                    throw Error("max depth exceeded");
                if (message.code != null && Object.hasOwnProperty.call(message, "code"))
                    writer.uint32(8).int32(message.code);
                if (message.message != null && Object.hasOwnProperty.call(message, "message"))
                    writer.uint32(18).string(message.message);
                return writer;
            };

            return ResultError;
        })();

        v1.BatchGetUserEmbeddingsResponse = (function() {

            function BatchGetUserEmbeddingsResponse(properties) {
                this.results = [];
                if (properties)
                    for (var keys = Object.keys(properties), i = 0; i < keys.length; ++i)
                        if (properties[keys[i]] != null && keys[i] !== "__proto__")
                            this[keys[i]] = properties[keys[i]];
            }

            BatchGetUserEmbeddingsResponse.prototype.results = $util.emptyArray;
            BatchGetUserEmbeddingsResponse.prototype.modelVersion = "";

            BatchGetUserEmbeddingsResponse.create = function create(properties) {
                return new BatchGetUserEmbeddingsResponse(properties);
            };

            BatchGetUserEmbeddingsResponse.encode = function encode(message, writer, q) {
                if (!writer)
                    writer = $Writer.create();
                if (q === undefined)
                    q = 0;
                if (q > $util.recursionLimit)
                    throw Error("max depth exceeded");
                if (message.results != null && message.results.length)
                    for (var i = 0; i < message.results.length; ++i)
                        $root.taste.v1.UserEmbeddingResult.encode(message.results[i], writer.uint32(10).fork(), q + 1).ldelim();
                if (message.modelVersion != null && Object.hasOwnProperty.call(message, "modelVersion"))
                    writer.uint32(18).string(message.modelVersion);
                return writer;
            };

            return BatchGetUserEmbeddingsResponse;
        })();

        return v1;
    })();

    return taste;
})();

module.exports = $root;
