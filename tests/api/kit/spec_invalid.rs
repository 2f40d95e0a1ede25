//! Values the spec's schemas do not allow, each by one mutation of a valid
//! one (`spec_values.rs` makes the valid ones).

use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};
use serde_json::{json, Value};

use crate::kit::spec::Spec;
use crate::kit::spec_values::{merged, object, types, valid, Pools};

/// A value the schema does not allow, by one mutation.
pub fn invalid(spec: &Spec, schema: &Value, name: &str, pools: &Pools) -> BoxedStrategy<Value> {
    let s = spec.resolve(schema);
    let mut options: Vec<BoxedStrategy<Value>> = vec![wrong_type(s)];
    if let Some(parts) = s["allOf"].as_array() {
        let inner = if parts.len() == 1 {
            parts[0].clone()
        } else {
            merged(spec, parts)
        };
        options.push(invalid(spec, &inner, name, pools));
    }
    if s.get("enum").is_some() {
        options.push(Just(json!("not_one_of_them")).boxed());
    }
    let ts = types(s);
    let has = |t: &str| ts.iter().any(|x| x == t);
    if has("string") {
        if let Some(max) = s["maxLength"].as_u64() {
            options.push(Just(Value::from("a".repeat(max as usize + 1))).boxed());
        }
        if s["minLength"].as_u64().unwrap_or(0) > 0 {
            options.push(Just(json!("")).boxed());
        }
        if s.get("pattern").is_some() || s.get("format").is_some() {
            options.push(
                prop::sample::select(vec![
                    "",
                    " ",
                    "UPPER",
                    "a b",
                    "-x-",
                    "x\u{0}y",
                    "not-a-uuid",
                    "yesterday",
                    "..",
                    "host=x user=y",
                    "ÿ",
                    "a\nb",
                ])
                .prop_map(Value::from)
                .boxed(),
            );
        }
    }
    if has("integer") || has("number") {
        if let Some(min) = s["minimum"].as_i64() {
            options.push(Just(json!(min - 1)).boxed());
        }
        if let Some(max) = s["maximum"].as_i64() {
            options.push(Just(json!(max + 1)).boxed());
        }
        if has("integer") {
            options.push(Just(json!(1.5)).boxed());
        }
        options.push(Just(json!(1e30)).boxed());
    }
    if has("array") {
        if let Some(max) = s["maxItems"].as_u64() {
            let item = valid(spec, &s["items"], name, pools);
            options.push(
                prop::collection::vec(item, max as usize + 1)
                    .prop_map(Value::from)
                    .boxed(),
            );
        }
        let bad = invalid(spec, &s["items"], name, pools);
        options.push(bad.prop_map(|v| json!([v])).boxed());
    }
    if has("object") {
        options.extend(object_mutations(spec, s, pools));
    }
    Union::new(options).boxed()
}

fn object_mutations(spec: &Spec, s: &Value, pools: &Pools) -> Vec<BoxedStrategy<Value>> {
    let whole = object(spec, s, pools);
    let mut out = Vec::new();
    for key in s["required"].as_array().into_iter().flatten() {
        let key = key.as_str().unwrap().to_string();
        out.push(
            whole
                .clone()
                .prop_map(move |mut v| {
                    v.as_object_mut().unwrap().remove(&key);
                    v
                })
                .boxed(),
        );
    }
    if s["additionalProperties"] == json!(false) {
        out.push(
            whole
                .clone()
                .prop_map(|mut v| {
                    v["unexpected_field"] = json!(1);
                    v
                })
                .boxed(),
        );
    }
    for (key, schema) in s["properties"].as_object().into_iter().flatten() {
        let key = key.clone();
        out.push(
            (whole.clone(), invalid(spec, schema, &key, pools))
                .prop_map(move |(mut v, bad)| {
                    v[&key] = bad;
                    v
                })
                .boxed(),
        );
    }
    out
}

fn wrong_type(s: &Value) -> BoxedStrategy<Value> {
    let ts = types(s);
    let all = [
        ("integer", json!(12345)),
        ("string", json!("text")),
        ("array", json!([1])),
        ("object", json!({ "x": 1 })),
        ("boolean", json!(true)),
    ];
    let wrong: Vec<Value> = all
        .into_iter()
        .filter(|(t, _)| {
            !ts.iter()
                .any(|x| x == t || (*t == "integer" && x == "number"))
        })
        .map(|(_, v)| v)
        .collect();
    prop::sample::select(wrong).boxed()
}
