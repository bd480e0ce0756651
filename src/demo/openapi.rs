//! The demo target's own OpenAPI 3.1 description, served at `/openapi.json`, so
//! `vigil import openapi http://…/openapi.json` has a real API to discover. Its server URL is
//! relative (`/`): it resolves against wherever the document was fetched from.

use serde_json::{Value, json};

use super::Endpoint;

/// The document.
pub(super) fn document() -> Value {
    let names: Vec<&str> = Endpoint::ALL.iter().map(|e| e.name()).collect();
    let reply = json!({ "$ref": "#/components/schemas/Reply" });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Vigil demo target",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The loopback API `vigil up --demo` monitors: endpoints with \
                            realistic latency and injected failures.",
        },
        "servers": [{ "url": "/" }],
        "tags": [{ "name": "demo", "description": "The demo endpoints" }],
        "paths": {
            "/": {
                "get": {
                    "operationId": "listEndpoints",
                    "summary": "The endpoints",
                    "tags": ["demo"],
                    "responses": {
                        "200": {
                            "description": "The service and its endpoints",
                            "content": { "application/json": {
                                "schema": { "$ref": "#/components/schemas/Index" } } },
                        },
                    },
                },
            },
            "/api/{endpoint}": {
                "get": {
                    "operationId": "callEndpoint",
                    "summary": "One endpoint: its status after its latency",
                    "tags": ["demo"],
                    "parameters": [{
                        "name": "endpoint",
                        "in": "path",
                        "required": true,
                        "schema": { "type": "string", "enum": names },
                        "example": "fast",
                    }],
                    "responses": {
                        "200": {
                            "description": "Up",
                            "content": { "application/json": { "schema": reply } },
                        },
                        "503": {
                            "description": "An injected failure (`flaky`: one request in 50)",
                            "content": { "application/json": { "schema": reply } },
                        },
                        "404": {
                            "description": "No such endpoint",
                            "content": { "text/plain": { "schema": { "type": "string" } } },
                        },
                    },
                },
            },
        },
        "components": {
            "schemas": {
                "Index": {
                    "type": "object",
                    "required": ["service", "endpoints"],
                    "additionalProperties": false,
                    "properties": {
                        "service": { "type": "string" },
                        "endpoints": {
                            "type": "array",
                            "items": { "type": "string", "pattern": "^/api/[a-z]+$" },
                        },
                    },
                },
                "Reply": {
                    "type": "object",
                    "required": ["status", "endpoint", "latency_ms"],
                    "additionalProperties": false,
                    "properties": {
                        "status": { "enum": ["UP", "DOWN"] },
                        "endpoint": { "type": "string", "enum": names },
                        "latency_ms": { "type": "number", "minimum": 0 },
                        "error": { "type": "string" },
                    },
                },
            },
        },
    })
}
