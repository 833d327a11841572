//! The API document (`public/openapi.json`, served at `/openapi.json`) against the route table:
//! the same operations, each documenting its errors with the shared error body, and security
//! declared wherever the route authenticates.

use edgechat_core::routes;
use serde_json::Value;
use std::collections::BTreeSet;

const DOCUMENT: &str = include_str!("../../../public/openapi.json");
const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "options", "head", "trace"];
/// Operations that authenticate by something other than a bearer token, or not at all.
const PUBLIC: &[&str] = &[
    "/health",
    "/health/ready",
    "/api/v1/auth/register",
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/webhooks/stripe",
    "/api/v1/limits",
];

fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("public/openapi.json is valid JSON")
}

/// Follows a local `$ref` (`#/a/b/c`) until the value is not a reference.
fn resolve<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(target) = value.get("$ref").and_then(Value::as_str) else {
            return value;
        };
        let pointer = target.strip_prefix('#').unwrap_or_else(|| panic!("only local refs are used: {target}"));
        value = doc.pointer(pointer).unwrap_or_else(|| panic!("unresolved $ref {target}"));
    }
    panic!("$ref chain too long")
}

/// Every API operation in the document: (METHOD, path, operation), static files left out.
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let paths = doc["paths"].as_object().expect("paths is an object");
    let mut out = Vec::new();
    for (path, item) in paths {
        if item.get("x-static") == Some(&Value::Bool(true)) {
            continue;
        }
        for method in METHODS {
            if let Some(op) = item.get(*method) {
                out.push((method.to_uppercase(), path.clone(), op));
            }
        }
    }
    out
}

fn list(set: &BTreeSet<(String, String)>) -> String {
    set.iter().map(|(m, p)| format!("  {m} {p}")).collect::<Vec<_>>().join("\n")
}

#[test]
fn the_document_is_openapi_3_1() {
    let doc = document();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")), "openapi: {}", doc["openapi"]);
    assert!(doc["info"]["title"].is_string());
    assert_eq!(doc["info"]["version"], edgechat_core::VERSION, "info.version is the version GET /health reports");
}

#[test]
fn the_documented_operations_are_exactly_the_route_table() {
    let doc = document();
    let documented: BTreeSet<(String, String)> = operations(&doc).into_iter().map(|(m, p, _)| (m, p)).collect();
    let routed: BTreeSet<(String, String)> = routes::table()
        .into_iter()
        .flat_map(|(pattern, methods)| {
            methods.into_iter().filter(|m| *m != "HEAD").map(move |m| (m.to_string(), pattern.to_string()))
        })
        .collect();
    let missing: BTreeSet<_> = routed.difference(&documented).cloned().collect();
    let extra: BTreeSet<_> = documented.difference(&routed).cloned().collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "public/openapi.json and routes::table() disagree\nrouted but not documented:\n{}\ndocumented but not routed (mark static files with \"x-static\": true):\n{}",
        list(&missing),
        list(&extra)
    );
}

#[test]
fn static_paths_are_not_routes() {
    let doc = document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if item.get("x-static") == Some(&Value::Bool(true)) {
            assert!(routes::pattern_of(path).is_none(), "{path} is marked x-static but is in the route table");
        }
    }
}

#[test]
fn every_operation_documents_client_errors_in_the_shared_shape() {
    let doc = document();
    let mut problems = Vec::new();
    for (method, path, op) in operations(&doc) {
        let name = format!("{method} {path}");
        // The OpenAI-compatible surface answers OpenAI's error shape, its Anthropic Messages
        // routes Anthropic's.
        let expected = match path.as_str() {
            p if p.starts_with("/v1/messages") => "AnthropicError",
            p if p.starts_with("/v1/") => "OpenAiError",
            _ => "Error",
        };
        let expected_ref = format!("#/components/schemas/{expected}");
        let Some(responses) = op["responses"].as_object() else {
            problems.push(format!("{name}: no responses"));
            continue;
        };
        if !responses.keys().any(|s| s.starts_with('4')) {
            problems.push(format!("{name}: no 4xx response"));
        }
        if !responses.keys().any(|s| s.starts_with('2')) {
            problems.push(format!("{name}: no 2xx response"));
        }
        for (status, response) in responses {
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            let response = resolve(&doc, response);
            let schema = &response["content"]["application/json"]["schema"];
            // The MCP endpoint's 400 is a JSON-RPC error when the body is not a JSON-RPC
            // message (the protocol says so), the shared error otherwise: both are listed.
            let either = |name: &str| {
                schema["anyOf"].as_array().is_some_and(|a| a.iter().any(|s| s["$ref"].as_str() == Some(name)))
            };
            let json_rpc = path == "/mcp"
                && status == "400"
                && either(&expected_ref)
                && either("#/components/schemas/JsonRpcResponse");
            if !json_rpc && schema["$ref"].as_str() != Some(expected_ref.as_str()) {
                problems.push(format!("{name}: {status} does not use the {expected} schema"));
            }
            if response["headers"].get("x-request-id").is_none() {
                problems.push(format!("{name}: {status} does not document x-request-id"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_shared_error_schemas_have_the_documented_fields() {
    let doc = document();
    let fields = |name: &str| -> BTreeSet<String> {
        let inner = &doc["components"]["schemas"][name]["properties"]["error"];
        let required: BTreeSet<String> =
            inner["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        assert_eq!(inner["additionalProperties"], Value::Bool(false), "{name}.error is closed");
        required
    };
    assert_eq!(fields("Error"), ["code", "message", "request_id"].map(String::from).into());
    assert_eq!(fields("OpenAiError"), ["code", "message", "param", "type"].map(String::from).into());
}

#[test]
fn authenticated_operations_declare_security_and_public_ones_do_not_need_a_bearer() {
    let doc = document();
    let schemes = doc["components"]["securitySchemes"].as_object().expect("securitySchemes");
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    let mut problems = Vec::new();
    for (method, path, op) in operations(&doc) {
        let name = format!("{method} {path}");
        let security = op.get("security").or_else(|| doc.get("security"));
        let requirements = security.and_then(Value::as_array).cloned().unwrap_or_default();
        for requirement in &requirements {
            for scheme in requirement.as_object().map(|o| o.keys().collect::<Vec<_>>()).unwrap_or_default() {
                if !schemes.contains_key(scheme) {
                    problems.push(format!("{name}: unknown security scheme {scheme}"));
                }
            }
        }
        let bearer = requirements.iter().any(|r| r.get("bearerAuth").is_some());
        if PUBLIC.contains(&path.as_str()) {
            if bearer {
                problems.push(format!("{name} is public but requires bearerAuth"));
            }
        } else {
            if !bearer {
                problems.push(format!("{name} authenticates but declares no bearerAuth security"));
            }
            let documents_401 = op["responses"].get("401").is_some();
            if !documents_401 {
                problems.push(format!("{name} authenticates but documents no 401"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn path_parameters_match_the_pattern_names() {
    let doc = document();
    let mut problems = Vec::new();
    for (method, path, op) in operations(&doc) {
        let in_pattern: BTreeSet<&str> =
            path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
        let declared: BTreeSet<&str> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| resolve(&doc, p))
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        if in_pattern != declared {
            problems.push(format!("{method} {path}: path parameters {declared:?}, pattern has {in_pattern:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_reference_resolves() {
    let doc = document();
    fn walk(doc: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(target) = map.get("$ref").and_then(Value::as_str) {
                    let ok = target.strip_prefix('#').is_some_and(|p| doc.pointer(p).is_some());
                    if !ok {
                        problems.push(format!("{at}: unresolved $ref {target}"));
                    }
                }
                for (k, v) in map {
                    walk(doc, v, &format!("{at}/{k}"), problems);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(doc, v, &format!("{at}/{i}"), problems);
                }
            }
            _ => {}
        }
    }
    let mut problems = Vec::new();
    walk(&doc, &doc, "#", &mut problems);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_authenticated_operation_documents_the_access_the_scope_check_enforces() {
    use edgechat_core::scopes::{access, Access};
    let doc = document();
    let mut problems = Vec::new();
    for (method, path, op) in operations(&doc) {
        let name = format!("{method} {path}");
        let concrete = path.replace('{', "x").replace('}', "");
        let route = routes::resolve(&method, &concrete).expect("documented operations are routed").route;
        let documented = op.get("x-edgechat-access");
        let expected = match access(route) {
            Access::Public => None,
            Access::Session => Some(Value::from("session")),
            Access::AnyOf(scopes) => Some(Value::from(scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>())),
        };
        if documented != expected.as_ref() {
            problems
                .push(format!("{name}: x-edgechat-access is {documented:?}, the scope check enforces {expected:?}"));
        }
        if expected.is_some() && op["responses"].get("403").is_none() {
            problems.push(format!("{name}: an API key may be refused here, but no 403 is documented"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_tool_name_enum_is_every_built_in_tool() {
    let doc = document();
    let documented: Vec<&str> = doc["components"]["schemas"]["ToolName"]["enum"]
        .as_array()
        .expect("ToolName has an enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let built_in: Vec<&str> = edgechat_core::agent::ALL.iter().map(|t| t.name()).collect();
    assert_eq!(documented, built_in);
    for schema in ["CreateConversationRequest", "UpdateConversationRequest"] {
        let max = &doc["components"]["schemas"][schema]["properties"]["tools"]["maxItems"];
        assert_eq!(max.as_u64(), Some(built_in.len() as u64), "{schema}");
    }
}
