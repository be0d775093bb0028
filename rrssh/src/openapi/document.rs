//! Building the OpenAPI 3.1 document from a router's operations.

use serde_json::{Map, Value, json};

use super::probe::{BodyShape, Collector, OutputShape, RouteSchemas, SchemaFn};

/// One operation of a router, as the document describes it.
#[derive(Debug, Clone, Copy)]
pub struct Operation<'a> {
    /// The method (`GET`, …, `STREAM`).
    pub method: &'a str,
    /// The path template (`/items/{id}`, `/files/{*rest}`).
    pub path: &'a str,
    /// The handler's name, for attribute routes.
    pub name: Option<&'a str>,
    /// The first paragraph of its doc comment.
    pub summary: Option<&'a str>,
    /// The scope a caller needs.
    pub scope: Option<&'a str>,
    /// How its schemas are made ([`SchemaFn::NONE`] when nothing is known).
    pub schemas: SchemaFn,
}

/// The standard error JSON, `{"error": {"status", "message", "detail"}}`.
pub fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["status", "message"],
                "properties": {
                    "status": {"type": "integer", "minimum": 100, "maximum": 599},
                    "message": {"type": "string"},
                    "detail": {}
                }
            }
        }
    })
}

/// `{name}` and `{*name}` captures of a template, in order, and the template as OpenAPI writes
/// it (`{*rest}` → `{rest}`).
fn captures(path: &str) -> (Vec<String>, String) {
    let mut names = Vec::new();
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        let name = rest[start + 1..start + end].trim_start_matches('*');
        names.push(name.to_owned());
        out.push('{');
        out.push_str(name);
        out.push('}');
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    (names, out)
}

/// A schema with a local `$ref` followed (one level).
fn resolve<'a>(schema: &'a Value, defs: &'a Map<String, Value>) -> &'a Value {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
        .and_then(|name| defs.get(name))
        .unwrap_or(schema)
}

fn open_schema(s: Option<&Value>) -> Value {
    s.cloned().unwrap_or_else(|| json!({}))
}

fn parameters(names: &[String], s: &RouteSchemas, defs: &Map<String, Value>) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let schema = if s.path_items.len() == names.len() {
            open_schema(s.path_items[i].as_ref())
        } else if names.len() == 1 {
            open_schema(s.path.as_ref())
        } else {
            s.path
                .as_ref()
                .map(|p| resolve(p, defs))
                .and_then(|p| p.get("properties")?.get(name))
                .cloned()
                .unwrap_or_else(|| json!({"type": "string"}))
        };
        out.push(json!({"name": name, "in": "path", "required": true, "schema": schema}));
    }
    if let Some(q) = &s.query {
        let q = resolve(q, defs);
        let required: Vec<&str> = q
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(props) = q.get("properties").and_then(Value::as_object) {
            for (name, schema) in props {
                out.push(json!({
                    "name": name,
                    "in": "query",
                    "required": required.contains(&name.as_str()),
                    "schema": schema,
                }));
            }
        }
    }
    out
}

fn request_body(body: &BodyShape) -> Option<Value> {
    let (ty, schema) = match body {
        BodyShape::None => return None,
        BodyShape::Json(s) => ("application/json", open_schema(s.as_ref())),
        BodyShape::Text => ("text/plain", json!({"type": "string"})),
        BodyShape::Bytes => (
            "application/octet-stream",
            json!({"type": "string", "contentMediaType": "application/octet-stream"}),
        ),
    };
    Some(json!({"required": true, "content": {ty: {"schema": schema}}}))
}

fn success(s: &RouteSchemas) -> (String, Value) {
    let status = if s.any_status { "2XX" } else { "200" };
    let content = match &s.output {
        OutputShape::Empty => None,
        OutputShape::Unknown => Some(json!({"*/*": {"schema": {}}})),
        OutputShape::Json(j) => {
            Some(json!({"application/json": {"schema": open_schema(j.as_ref())}}))
        }
        OutputShape::Stream(i) => Some(json!({
            "application/x-ndjson": {"schema": open_schema(i.as_ref()), "x-rrssh-items": true}
        })),
        OutputShape::Text => Some(json!({"text/plain": {"schema": {"type": "string"}}})),
        OutputShape::Bytes => Some(json!({"application/octet-stream": {"schema": {}}})),
    };
    let description = match &s.output {
        OutputShape::Stream(_) => {
            "A stream of JSON items, one per line, ended cleanly only when complete"
        }
        OutputShape::Empty => "Done",
        _ => "The answer",
    };
    let mut r = json!({"description": description});
    if let Some(c) = content {
        r["content"] = c;
    }
    (status.to_owned(), r)
}

fn operation_id(op: &Operation<'_>) -> String {
    op.name.map_or_else(
        || {
            let path: String = op
                .path
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            format!(
                "{}{}",
                op.method.to_ascii_lowercase(),
                path.trim_end_matches('_')
            )
        },
        str::to_owned,
    )
}

/// The OpenAPI 3.1 document of `operations`, titled `title`, version `version`.
pub fn document<'a>(
    title: &str,
    version: &str,
    operations: impl IntoIterator<Item = Operation<'a>>,
) -> Value {
    let mut collector = Collector::new();
    let ops: Vec<(Operation<'a>, RouteSchemas)> = operations
        .into_iter()
        .map(|op| {
            let s = (op.schemas.0)(&mut collector);
            (op, s)
        })
        .collect();
    let defs = collector.generator.take_definitions(true);
    let mut paths = Map::new();
    for (op, s) in &ops {
        let (names, template) = captures(op.path);
        let stream = op.method == "STREAM";
        let mut o = Map::new();
        o.insert("operationId".into(), json!(operation_id(op)));
        if let Some(summary) = op.summary {
            o.insert("summary".into(), json!(summary));
        }
        let params = parameters(&names, s, &defs);
        if !params.is_empty() {
            o.insert("parameters".into(), Value::Array(params));
        }
        if let Some(b) = request_body(&s.body) {
            o.insert("requestBody".into(), b);
        }
        let (status, ok) = success(s);
        o.insert(
            "responses".into(),
            json!({
                status: ok,
                "default": {
                    "description": "An error, as rrssh's standard error JSON",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                }
            }),
        );
        if stream {
            o.insert("x-rrssh-method".into(), json!("STREAM"));
        }
        if let Some(scope) = op.scope {
            o.insert("x-rrssh-scope".into(), json!(scope));
        }
        let key = if stream {
            "get".to_owned()
        } else {
            op.method.to_ascii_lowercase()
        };
        let item = paths
            .entry(template)
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        // A STREAM next to a GET on the same path: described under an extension key.
        let key = if item.contains_key(&key) {
            format!("x-rrssh-{}", op.method.to_ascii_lowercase())
        } else {
            key
        };
        item.insert(key, Value::Object(o));
    }
    let mut schemas = defs;
    schemas.insert("Error".into(), error_schema());
    json!({
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": schemas}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_are_named_and_catch_alls_rewritten() {
        let (names, t) = captures("/a/{id}/files/{*rest}");
        assert_eq!(names, ["id", "rest"]);
        assert_eq!(t, "/a/{id}/files/{rest}");
    }

    #[test]
    fn operations_without_schemas_are_still_described() {
        let doc = document(
            "t",
            "1",
            [Operation {
                method: "STREAM",
                path: "/ticks/{n}",
                name: None,
                summary: Some("Ticks."),
                scope: None,
                schemas: SchemaFn::NONE,
            }],
        );
        let op = &doc["paths"]["/ticks/{n}"]["get"];
        assert_eq!(op["x-rrssh-method"], "STREAM");
        assert_eq!(op["operationId"], "stream_ticks__n");
        assert_eq!(op["parameters"][0]["name"], "n");
        assert!(doc["components"]["schemas"]["Error"].is_object());
    }
}
