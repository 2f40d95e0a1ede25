//! Values generated from the spec's own schemas: `valid` aims at what a
//! schema allows and `invalid` at what it does not, by one mutation. The
//! contract test still asks the spec's validator which one a value is, so a
//! generator that misses the mark cannot make a wrong verdict.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};
use serde_json::{json, Map, Value};

use crate::kit::spec::Spec;

/// Values that name real records, so that valid requests find some.
#[derive(Clone)]
pub struct Pools {
    pub uuids: Arc<Vec<String>>,
    /// A well-formed DSN of a server that refuses connections.
    pub dsn: String,
}

pub fn types(s: &Value) -> Vec<String> {
    match &s["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect(),
        _ if s.get("properties").is_some() => vec!["object".into()],
        _ => Vec::new(),
    }
}

/// A schema's `allOf` parts merged into one object schema.
pub fn merged(spec: &Spec, parts: &[Value]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut extra = Value::Bool(true);
    for part in parts {
        let part = spec.resolve(part);
        if let Some(p) = part["properties"].as_object() {
            properties.extend(p.clone());
        }
        if let Some(r) = part["required"].as_array() {
            required.extend(r.clone());
        }
        if part.get("additionalProperties").is_some() {
            extra = part["additionalProperties"].clone();
        }
    }
    json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": extra })
}

fn regex_body(pattern: &str) -> String {
    let p = pattern.strip_prefix('^').unwrap_or(pattern);
    p.strip_suffix('$').unwrap_or(p).to_string()
}

pub fn valid(spec: &Spec, schema: &Value, name: &str, pools: &Pools) -> BoxedStrategy<Value> {
    let s = spec.resolve(schema);
    if let Some(c) = s.get("const") {
        return Just(c.clone()).boxed();
    }
    if let Some(values) = s["enum"].as_array() {
        return prop::sample::select(values.clone()).boxed();
    }
    if let Some(parts) = s["allOf"].as_array() {
        return match parts.as_slice() {
            [one] => valid(spec, one, name, pools),
            many => valid(spec, &merged(spec, many), name, pools),
        };
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alternatives) = s[key].as_array() {
            let alternatives: Vec<_> = alternatives
                .iter()
                .map(|a| valid(spec, a, name, pools))
                .collect();
            return Union::new(alternatives).boxed();
        }
    }
    let ts = types(s);
    let mut options: Vec<(u32, BoxedStrategy<Value>)> = Vec::new();
    for t in &ts {
        let (weight, strategy) = match t.as_str() {
            "null" => (1, Just(Value::Null).boxed()),
            "string" => (9, string(s, name, pools)),
            "integer" => (9, integer(s)),
            "number" => (9, number(s)),
            "boolean" => (9, any::<bool>().prop_map(Value::from).boxed()),
            "array" => (9, array(spec, s, name, pools)),
            "object" => (9, object(spec, s, pools)),
            other => panic!("schema type {other} in {s}"),
        };
        options.push((weight, strategy));
    }
    if options.is_empty() {
        // An unconstrained value: any JSON the server takes as-is.
        return prop_oneof![
            Just(json!({})),
            "[a-z]{0,8}".prop_map(Value::from),
            any::<bool>().prop_map(Value::from)
        ]
        .boxed();
    }
    Union::new_weighted(options).boxed()
}

fn string(s: &Value, name: &str, pools: &Pools) -> BoxedStrategy<Value> {
    if name == "dsn" {
        return Just(Value::from(pools.dsn.clone())).boxed();
    }
    let min = s["minLength"].as_u64().unwrap_or(0) as usize;
    let max = s["maxLength"].as_u64().map_or(usize::MAX, |m| m as usize);
    match s["format"].as_str() {
        Some("uuid") => {
            let known = prop::sample::select((*pools.uuids).clone()).prop_map(Value::from);
            let random =
                any::<u128>().prop_map(|n| Value::from(uuid::Uuid::from_u128(n).to_string()));
            return prop_oneof![3 => known, 1 => random].boxed();
        }
        Some("date-time") => {
            return (0i64..4_102_444_800)
                .prop_map(|secs| {
                    Value::from(
                        chrono::DateTime::from_timestamp(secs, 0)
                            .unwrap()
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    )
                })
                .boxed();
        }
        _ => {}
    }
    let pattern = match s["pattern"].as_str() {
        Some(p) => regex_body(p),
        None => format!("[a-zA-Z0-9 ._-]{{{min},{}}}", max.min(min + 24)),
    };
    proptest::string::string_regex(&pattern)
        .unwrap_or_else(|e| panic!("pattern {pattern}: {e}"))
        .prop_filter("within the length bounds", move |v| {
            (min..=max).contains(&v.chars().count())
        })
        .prop_map(Value::from)
        .boxed()
}

fn bounds(s: &Value, default: (i64, i64)) -> (i64, i64) {
    let low = s["minimum"]
        .as_i64()
        .or_else(|| s["exclusiveMinimum"].as_i64().map(|m| m + 1))
        .unwrap_or(default.0);
    let high = s["maximum"]
        .as_i64()
        .or_else(|| s["exclusiveMaximum"].as_i64().map(|m| m - 1))
        .unwrap_or(default.1);
    (low, high)
}

fn integer(s: &Value) -> BoxedStrategy<Value> {
    // Without declared bounds anything a JSON integer can be is fair.
    let (low, high) = bounds(s, (-(1 << 53), 1 << 53));
    let n = prop_oneof![
        1 => Just(low),
        1 => Just(high),
        4 => low..=high,
    ];
    // JSON Schema counts 3186.0 as an integer, so the server must too.
    (n, any::<bool>())
        .prop_map(|(n, as_float)| {
            if as_float && n.unsigned_abs() < (1 << 53) {
                json!(n as f64)
            } else {
                json!(n)
            }
        })
        .boxed()
}

fn number(s: &Value) -> BoxedStrategy<Value> {
    let low = s["minimum"].as_f64().unwrap_or(-1e9);
    let high = s["maximum"].as_f64().unwrap_or(1e9);
    (low..=high).prop_map(Value::from).boxed()
}

fn array(spec: &Spec, s: &Value, name: &str, pools: &Pools) -> BoxedStrategy<Value> {
    let min = s["minItems"].as_u64().unwrap_or(0) as usize;
    let max = s["maxItems"]
        .as_u64()
        .map_or(min + 3, |m| (m as usize).min(min + 3));
    let items = valid(spec, &s["items"], name, pools);
    prop::collection::vec(items, min..=max)
        .prop_map(Value::from)
        .boxed()
}

pub fn object(spec: &Spec, s: &Value, pools: &Pools) -> BoxedStrategy<Value> {
    let required: Vec<String> = s["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(String::from))
        .collect();
    let properties: Vec<(String, Value)> = s["properties"]
        .as_object()
        .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    // Each property's value, and whether an optional one is sent.
    let fields: Vec<_> = properties
        .iter()
        .map(|(key, schema)| {
            let sent = if required.contains(key) {
                Just(true).boxed()
            } else {
                any::<bool>().boxed()
            };
            (Just(key.clone()), valid(spec, schema, key, pools), sent)
        })
        .collect();
    let extra = match &s["additionalProperties"] {
        Value::Object(_) => {
            let names = s["propertyNames"]["pattern"]
                .as_str()
                .map_or("[a-z]{1,8}".to_string(), regex_body);
            let keys = proptest::string::string_regex(&names).unwrap();
            prop::collection::btree_map(
                keys,
                valid(spec, &s["additionalProperties"], "", pools),
                0..3,
            )
            .boxed()
        }
        _ => Just(Default::default()).boxed(),
    };
    // `if`/`then` between fields: when the condition holds, the fields
    // `then` requires are sent.
    let condition = s.get("if").cloned();
    let then_required: Vec<String> = s["then"]["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(String::from))
        .collect();
    (fields, extra)
        .prop_map(move |(fields, extra)| {
            let mut map: Map<String, Value> = extra.into_iter().collect();
            for (key, value, sent) in &fields {
                if *sent {
                    map.insert(key.clone(), value.clone());
                }
            }
            if let Some(condition) = &condition {
                let holds = condition["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .all(|(k, rule)| map.get(k) == rule.get("const"));
                if holds {
                    for (key, value, _) in &fields {
                        if then_required.contains(key) {
                            map.insert(key.clone(), value.clone());
                        }
                    }
                }
            }
            Value::Object(map)
        })
        .boxed()
}
