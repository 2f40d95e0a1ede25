//! The requests the contract test sends: one per operation, its parameters
//! and body generated from the spec, valid or not.

use super::*;

/// One generated request.
#[derive(Debug, Clone)]
pub(super) struct Request {
    pub(super) params: Vec<(Param, Option<String>)>,
    pub(super) body: Option<Value>,
    /// Which part was meant to be broken, for the report.
    pub(super) broken: Option<String>,
}

/// The ids a path parameter takes when the request is meant to be valid:
/// real records where the operation is harmless, random ones (404) where it
/// would suspend, delete, move or drain the fixtures.
pub(super) struct Fixtures {
    pub(super) own: String,
    pub(super) sub: String,
    pub(super) agent: String,
    pub(super) call: String,
    pub(super) server: String,
}

impl Fixtures {
    pub(super) fn path_values(&self, op: &Operation, name: &str) -> Vec<String> {
        let random = uuid::Uuid::new_v4().to_string();
        let method = op.method.as_str();
        let path = op.path.as_str();
        let keeps = |ids: &[&String]| {
            let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
            v.push(random.clone());
            v
        };
        match (name, path) {
            ("id", p) if p.starts_with("/v1/tenants/{id}") => {
                let harmless = method == "GET"
                    || (method == "PATCH" && p == "/v1/tenants/{id}")
                    || (method == "POST"
                        && (p.ends_with("/subtenants")
                            || p.ends_with("/api-keys")
                            || p.ends_with("/domains")));
                if harmless {
                    vec![self.own.clone()]
                } else {
                    vec![random]
                }
            }
            ("id", "/v1/agents/{id}") if method != "DELETE" => keeps(&[&self.agent]),
            ("id", "/v1/calls/{id}") => keeps(&[&self.call]),
            ("id", "/v1/servers/{id}") if method == "GET" => keeps(&[&self.server]),
            _ => vec![random],
        }
    }
}

/// A parameter's text as the typed value the spec describes, for its validator.
pub(super) fn typed(schema: &Value, text: &str) -> Value {
    let types = schema["type"].to_string();
    if types.contains("integer") || types.contains("number") {
        if let Ok(n) = text.parse::<i64>() {
            return json!(n);
        }
        if let Ok(f) = text.parse::<f64>() {
            if f.is_finite() {
                return json!(f);
            }
        }
    }
    if types.contains("boolean") && (text == "true" || text == "false") {
        return json!(text == "true");
    }
    json!(text)
}

pub(super) fn text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

pub(super) fn param_value(
    spec: &Spec,
    op: &Operation,
    p: &Param,
    fixtures: &Fixtures,
    pools: &Pools,
) -> BoxedStrategy<Option<String>> {
    match (p.location.as_str(), p.name.as_str()) {
        ("path", name) => prop::sample::select(fixtures.path_values(op, name))
            .prop_map(Some)
            .boxed(),
        ("header", "x-tenant-id") => prop::option::of(Just(fixtures.own.clone())).boxed(),
        ("header", "x-subtenant-id") => prop::option::of(Just(fixtures.sub.clone())).boxed(),
        _ => {
            let value = valid(spec, &p.schema, &p.name, pools).prop_map(|v| text(&v));
            if p.required {
                value.boxed()
            } else {
                prop::option::of(value).prop_map(Option::flatten).boxed()
            }
        }
    }
}

pub(super) fn request(
    spec: &Spec,
    op: &Operation,
    fixtures: &Fixtures,
    pools: &Pools,
) -> BoxedStrategy<Request> {
    let params: Vec<_> = op
        .params
        .iter()
        .map(|p| (Just(p.clone()), param_value(spec, op, p, fixtures, pools)))
        .collect();
    let body = match &op.body {
        Some(schema) => valid(spec, schema, "", pools).prop_map(Some).boxed(),
        None => Just(None).boxed(),
    };
    let good = (params, body).prop_map(|(params, body)| Request {
        params,
        body,
        broken: None,
    });
    // One part broken: a parameter or the body.
    let mut breaks: Vec<BoxedStrategy<(usize, Value)>> = op
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let location = p.location.clone();
            invalid(spec, &p.schema, &p.name, pools)
                .prop_filter_map("a parameter that can be sent", move |v| {
                    let t = match &v {
                        Value::String(_) | Value::Number(_) | Value::Bool(_) => text(&v)?,
                        _ => return None,
                    };
                    // An empty or dot segment is another route, and a header
                    // cannot carry control characters at all.
                    let sendable = match location.as_str() {
                        "path" => !t.trim_matches('.').is_empty(),
                        "header" => reqwest::header::HeaderValue::from_str(&t).is_ok(),
                        _ => true,
                    };
                    sendable.then_some((i, v))
                })
                .boxed()
        })
        .collect();
    if let Some(schema) = &op.body {
        breaks.push(
            invalid(spec, schema, "", pools)
                .prop_map(|v| (usize::MAX, v))
                .boxed(),
        );
    }
    if breaks.is_empty() {
        return good.boxed();
    }
    let bad = (good.clone(), proptest::strategy::Union::new(breaks)).prop_map(|(mut r, (i, v))| {
        if i == usize::MAX {
            r.broken = Some("body".into());
            r.body = Some(v);
        } else {
            r.broken = Some(r.params[i].0.name.clone());
            r.params[i].1 = text(&v);
        }
        r
    });
    prop_oneof![good, bad].boxed()
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (p, value) in &self.params {
            if let Some(v) = value {
                write!(f, "{}:{}={v:?} ", p.location, p.name)?;
            }
        }
        if let Some(body) = &self.body {
            write!(f, "body={body}")?;
        }
        if let Some(broken) = &self.broken {
            write!(f, " (broken: {broken})")?;
        }
        Ok(())
    }
}

/// Whether the spec allows the request, by its own validators.
pub(super) fn allowed(spec: &Spec, op: &Operation, r: &Request) -> Result<(), String> {
    for (p, value) in &r.params {
        match value {
            None if p.required => return Err(format!("{} is missing", p.name)),
            None => {}
            Some(t)
                if !spec
                    .validator(&p.schema)
                    .is_valid(&typed(spec.resolve(&p.schema), t)) =>
            {
                return Err(format!("{} = {t:?}", p.name));
            }
            Some(_) => {}
        }
    }
    if let (Some(schema), Some(body)) = (&op.body, &r.body) {
        if !spec.validator(schema).is_valid(body) {
            return Err(format!("body {body}"));
        }
    }
    Ok(())
}

/// A path segment, percent-encoded where it is not plain.
pub(super) fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
