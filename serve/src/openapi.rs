//! The OpenAPI 3 document of an environment's endpoints, generated from the pipe
//! definitions it serves: one path per pipe and format, its parameters typed as
//! declared (with defaults, bounds and allowed values).

use serde_json::{Value, json};

use sluice_engine::project::Pipe;
use sluice_engine::project::params::{Param, ParamType, ParamValue};

use super::FORMATS;

pub(crate) fn value_json(v: &ParamValue) -> Value {
    match v {
        ParamValue::Int(i) => json!(i),
        ParamValue::Float(f) => json!(f),
        ParamValue::Bool(b) => json!(b),
        ParamValue::Null(_) => Value::Null,
        // The values themselves, not their SQL spelling (Display quotes strings).
        ParamValue::String(s) => json!(s),
        ParamValue::Date(d) => json!(d.format("%Y-%m-%d").to_string()),
        ParamValue::Timestamp(t) => json!(t.format("%Y-%m-%dT%H:%M:%S%.f").to_string()),
    }
}

fn param_schema(p: &Param) -> Value {
    let mut schema = match p.ty {
        ParamType::Int => json!({"type": "integer", "format": "int64"}),
        ParamType::Float => json!({"type": "number", "format": "double"}),
        ParamType::String => json!({"type": "string"}),
        ParamType::Bool => json!({"type": "boolean"}),
        ParamType::Date => json!({"type": "string", "format": "date"}),
        ParamType::Timestamp => json!({"type": "string", "format": "date-time"}),
    };
    let obj = schema.as_object_mut().expect("object");
    if let Some(d) = &p.default {
        obj.insert("default".into(), value_json(d));
    }
    if let Some(m) = &p.min {
        obj.insert("minimum".into(), value_json(m));
    }
    if let Some(m) = &p.max {
        obj.insert("maximum".into(), value_json(m));
    }
    if !p.allowed.is_empty() {
        obj.insert(
            "enum".into(),
            Value::Array(p.allowed.iter().map(value_json).collect()),
        );
    }
    schema
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

/// The document for `env` serving `pipes` (endpoint pipes, as the environment runs them).
pub fn document(project: &str, env: &str, pipes: &[Pipe]) -> Value {
    let mut paths = serde_json::Map::new();
    for pipe in pipes {
        let params: Vec<Value> = pipe
            .params
            .values()
            .map(|p| {
                let mut v = json!({
                    "name": p.name,
                    "in": "query",
                    "required": p.required && p.default.is_none(),
                    "schema": param_schema(p),
                });
                if let Some(d) = &p.description {
                    v["description"] = json!(d);
                }
                v
            })
            .collect();
        for format in FORMATS {
            let content = match *format {
                "json" => {
                    json!({"application/json": {"schema": {"$ref": "#/components/schemas/PipeResult"}}})
                }
                "ndjson" => json!({"application/x-ndjson": {"schema": {"type": "string"}}}),
                "csv" => json!({"text/csv": {"schema": {"type": "string"}}}),
                "parquet" => {
                    json!({"application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}}})
                }
                _ => {
                    json!({"application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}}})
                }
            };
            paths.insert(
                format!("/v0/pipes/{}.{format}", pipe.name),
                json!({
                    "get": {
                        "operationId": format!("{}_{format}", pipe.name),
                        "summary": pipe.description.clone().unwrap_or_else(|| format!("pipe {}", pipe.name)),
                        "tags": [pipe.name],
                        "parameters": params,
                        "responses": {
                            "200": {"description": "the pipe's output", "content": content},
                            "400": error_response("a bad parameter, or a result over the limits"),
                            "401": error_response("no valid token of this environment"),
                            "403": error_response("the token may not call this pipe"),
                            "404": error_response("no such endpoint"),
                            "408": error_response("the run took longer than the environment's timeout"),
                            "429": error_response("too many queries running"),
                            "503": error_response("over capacity (memory) or the store is unavailable"),
                        }
                    }
                }),
            );
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": format!("{project} ({env})"),
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!("Endpoint pipes of the Sluice project `{project}`, environment `{env}`."),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"token": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "token": {"type": "apiKey", "in": "query", "name": "token"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "status"],
                    "properties": {
                        "error": {"type": "string"},
                        "status": {"type": "integer"},
                    }
                },
                "PipeResult": {
                    "type": "object",
                    "required": ["meta", "data", "rows", "statistics"],
                    "properties": {
                        "meta": {"type": "array", "items": {"type": "object", "properties": {
                            "name": {"type": "string"}, "type": {"type": "string"}}}},
                        "data": {"type": "array", "items": {"type": "object"}},
                        "rows": {"type": "integer"},
                        "statistics": {"type": "object", "properties": {
                            "elapsed": {"type": "number", "description": "seconds"},
                            "rows_read": {"type": "integer"},
                            "bytes_read": {"type": "integer"},
                        }},
                    }
                }
            }
        }
    })
}
