"""The OpenAPI description of the chat body, published by every entry the same way.

The FastAPI entries (the in-process server, the Ray ingress) read the body themselves (`Request`),
so FastAPI alone would describe `POST /v1/chat/completions` with no body at all. `describe_chat`
adds the request schema (from `ChatCompletionRequest`, the model that validates it) and the
OpenAI error answer to the app's generated document: one install line per app. The graph
runner has no generated document; `api_document` gives it the same one, whole, which is also
what a schemathesis fuzz of the graph reads.
"""

from __future__ import annotations

from typing import Any

from shared_pipeline.chat_request import ChatCompletionRequest

CHAT_PATH = "/v1/chat/completions"
REF = "#/components/schemas/{model}"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["message", "type"],
        "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                       "param": {"type": ["string", "null"]},
                       "code": {"type": ["integer", "string", "null"]}}}}}
_JSON_ERROR = {"description": "an OpenAI error body",
               "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}}


def _schemas() -> dict[str, Any]:
    """The request model and the models it nests, as OpenAPI component schemas."""
    schema = ChatCompletionRequest.model_json_schema(ref_template=REF)
    nested = schema.pop("$defs", {})
    return {"ChatCompletionRequest": schema, "Error": ERROR_SCHEMA, **nested}


def chat_operation() -> dict[str, Any]:
    """`POST /v1/chat/completions`: the body it takes and the answers it gives."""
    return {
        "operationId": "chat_completions", "summary": "OpenAI chat completion",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": REF.format(model="ChatCompletionRequest")}}}},
        "responses": {
            "200": {"description": "a chat.completion, or SSE chunks when streaming",
                    "content": {"application/json": {"schema": {"type": "object"}},
                                "text/event-stream": {"schema": {"type": "string"}}}},
            "4XX": _JSON_ERROR, "5XX": _JSON_ERROR}}


def add_chat_schema(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with the chat operation's body and errors described (changed in place)."""
    document.setdefault("components", {}).setdefault("schemas", {}).update(_schemas())
    document.setdefault("paths", {}).setdefault(CHAT_PATH, {})["post"] = chat_operation()
    return document


def api_document(title: str) -> dict[str, Any]:
    """A whole OpenAPI 3.1 document for an entry with no generated one (the graph runner)."""
    models = {"get": {"operationId": "models", "summary": "the served model list",
                      "responses": {"200": {"description": "an OpenAI model list",
                                            "content": {"application/json": {
                                                "schema": {"type": "object"}}}}}}}
    return add_chat_schema({"openapi": "3.1.0", "info": {"title": title, "version": "1"},
                            "paths": {"/v1/models": models}})


def describe_chat(app: Any) -> None:
    """Make a FastAPI `app`'s `/openapi.json` describe the chat body (before it is served)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_chat_schema(generate())
        return app.openapi_schema

    app.openapi = openapi
