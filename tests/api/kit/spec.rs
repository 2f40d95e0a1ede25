//! The published `/openapi.json`, read the way a client reads it: its
//! routes and methods, each operation's parameters, body schema and declared
//! errors, and a JSON Schema validator that says whether a value is one the
//! spec allows. The fuzz, route-table and contract tests take their routes
//! from here, never from a hand-written list.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::TestApp;

pub struct Spec {
    pub doc: Value,
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    /// `path`, `query` or `header`.
    pub location: String,
    pub required: bool,
    pub schema: Value,
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub method: Method,
    pub path: String,
    pub id: String,
    pub params: Vec<Param>,
    /// The JSON body's schema, when the operation takes one.
    pub body: Option<Value>,
    /// Declared error statuses and the codes each may carry.
    pub errors: BTreeMap<u16, BTreeSet<String>>,
}

impl Operation {
    pub fn data_plane(&self) -> bool {
        self.params.iter().any(|p| p.name == "x-tenant-id")
    }

    /// Whether the spec declares this error.
    pub fn declares(&self, status: u16, code: &str) -> bool {
        self.errors.get(&status).is_some_and(|c| c.contains(code))
    }
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

impl Spec {
    pub async fn fetch(app: &TestApp) -> Self {
        let doc: Value = app
            .client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self { doc }
    }

    /// Every path with the methods the spec lists for it.
    pub fn routes(&self) -> Vec<(String, Vec<Method>)> {
        self.paths()
            .map(|(path, item)| {
                let methods = METHODS
                    .iter()
                    .filter(|m| item.get(**m).is_some())
                    .map(|m| m.to_uppercase().parse().unwrap())
                    .collect();
                (path.clone(), methods)
            })
            .collect()
    }

    fn paths(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.doc["paths"].as_object().expect("paths").iter()
    }

    pub fn operations(&self) -> Vec<Operation> {
        let mut out = Vec::new();
        for (path, item) in self.paths() {
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                let params = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| Param {
                        name: p["name"].as_str().unwrap().to_ascii_lowercase(),
                        location: p["in"].as_str().unwrap().to_string(),
                        required: p["required"].as_bool().unwrap_or(false),
                        schema: p["schema"].clone(),
                    })
                    .collect();
                let body = op["requestBody"]["content"]["application/json"]["schema"].clone();
                let errors = op["responses"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .filter_map(|(status, response)| {
                        let status: u16 = status.parse().ok()?;
                        let codes = response["x-error-codes"]
                            .as_array()?
                            .iter()
                            .map(|c| c.as_str().unwrap().to_string())
                            .collect();
                        Some((status, codes))
                    })
                    .collect();
                out.push(Operation {
                    method: method.to_uppercase().parse().unwrap(),
                    path: path.clone(),
                    id: op["operationId"].as_str().unwrap_or_default().to_string(),
                    params,
                    body: (!body.is_null()).then_some(body),
                    errors,
                });
            }
        }
        out
    }

    /// The schema a `$ref` points at (or the schema itself).
    pub fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                let pointer = r.strip_prefix('#').expect("local reference");
                self.resolve(self.doc.pointer(pointer).expect("reference resolves"))
            }
            None => schema,
        }
    }

    /// A validator for `schema`, with the spec's components in reach of its
    /// references, and formats (uuid, date-time) checked.
    pub fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut root = schema.clone();
        if let Value::Object(map) = &mut root {
            map.insert("components".into(), self.doc["components"].clone());
        } else {
            root = json!({ "allOf": [schema], "components": self.doc["components"] });
        }
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("the spec's schema {schema} does not compile: {e}"))
    }
}
