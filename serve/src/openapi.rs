//! The OpenAPI 3 document of an environment's endpoints, generated from the pipe
//! definitions it serves: one path per pipe and format, its parameters typed as
//! declared (with defaults, bounds and allowed values), and its output columns and
//! their types, from the pipe's plan against the environment's sources.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
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

/// The JSON Schema of a column's values as the JSON format writes them (arrow-json:
/// numbers, strings, booleans; dates and timestamps as ISO text).
fn column_schema(ty: &DataType, nullable: bool) -> Value {
    let mut v = match ty {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            json!({"type": "integer", "format": "int64"})
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            json!({"type": "integer", "minimum": 0})
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            json!({"type": "number", "format": "double"})
        }
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => json!({"type": "number"}),
        DataType::Boolean => json!({"type": "boolean"}),
        DataType::Date32 | DataType::Date64 => json!({"type": "string", "format": "date"}),
        DataType::Timestamp(..) => json!({"type": "string", "format": "date-time"}),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            json!({"type": "array", "items": column_schema(f.data_type(), f.is_nullable())})
        }
        DataType::Struct(fields) => json!({
            "type": "object",
            "properties": fields
                .iter()
                .map(|f| (f.name().clone(), column_schema(f.data_type(), f.is_nullable())))
                .collect::<serde_json::Map<String, Value>>(),
        }),
        _ => json!({"type": "string"}),
    };
    let obj = v.as_object_mut().expect("object");
    obj.insert("x-arrow-type".into(), json!(type_name(ty)));
    if nullable {
        obj.insert("nullable".into(), json!(true));
    }
    v
}

/// A column's Arrow type as the API names it: string and binary views (how DataFusion
/// reads other writers' strings) are the same values as `Utf8` and `Binary`, so an
/// endpoint's contract does not change with the reader's layout.
fn type_name(ty: &DataType) -> String {
    match ty {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8.to_string(),
        DataType::BinaryView | DataType::LargeBinary => DataType::Binary.to_string(),
        other => other.to_string(),
    }
}

/// The output columns as `/v0/pipes` lists them: name, Arrow type, nullable.
pub(crate) fn columns_json(schema: &Schema) -> Value {
    schema
        .fields()
        .iter()
        .map(|f| {
            json!({
                "name": f.name(),
                "type": type_name(f.data_type()),
                "nullable": f.is_nullable(),
            })
        })
        .collect()
}

/// The JSON Schema of one row of a pipe's output.
fn row_schema(schema: &Schema) -> Value {
    json!({
        "type": "object",
        "required": schema.fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>(),
        "properties": schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), column_schema(f.data_type(), f.is_nullable())))
            .collect::<serde_json::Map<String, Value>>(),
    })
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

/// The document for `env` serving `pipes` (endpoint pipes, as the environment runs them,
/// with their output schema where they plan).
pub fn document(project: &str, env: &str, pipes: &[(Arc<Pipe>, Option<SchemaRef>)]) -> Value {
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for (pipe, output) in pipes {
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
        let result_ref = match output {
            Some(schema) => {
                let row = format!("{}_row", pipe.name);
                let result = format!("{}_result", pipe.name);
                schemas.insert(row.clone(), row_schema(schema));
                schemas.insert(
                    result.clone(),
                    json!({"allOf": [
                        {"$ref": "#/components/schemas/PipeResult"},
                        {"type": "object", "properties": {
                            "data": {"type": "array", "items": {"$ref": format!("#/components/schemas/{row}")}},
                        }},
                    ]}),
                );
                format!("#/components/schemas/{result}")
            }
            None => "#/components/schemas/PipeResult".to_string(),
        };
        let ndjson_schema = match output {
            Some(_) => json!({"$ref": format!("#/components/schemas/{}_row", pipe.name)}),
            None => json!({"type": "string"}),
        };
        for format in FORMATS {
            let content = match *format {
                "json" => {
                    json!({"application/json": {"schema": {"$ref": result_ref}}})
                }
                "ndjson" => json!({"application/x-ndjson": {"schema": ndjson_schema}}),
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
                            "400": error_response("a bad parameter (outside its constraints), or a result over the limits"),
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
    let mut components = json!({
                "Error": {
                    "type": "object",
                    "required": ["error", "status"],
                    "properties": {
                        "error": {"type": "string"},
                        "status": {"type": "integer"},
                        "id": {"type": "string", "description": "500 only: the id of the failure in the server's log"},
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
    });
    components.as_object_mut().expect("object").extend(schemas);
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
            "schemas": components,
        }
    })
}
