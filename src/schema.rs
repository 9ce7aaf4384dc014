//! The JSON Schema of the profile file, built from the settings types of the
//! registered providers; `schemas/profile.schema.json` is this, and a test keeps it fresh.

use crate::registry;
use crate::settings::EngineSettings;
use serde_json::{json, Map, Value};

/// The JSON Schema of a profiles file (every provider's settings).
pub fn profile_file_schema() -> Value {
    let mut defs = Map::new();
    let mut alternatives = Vec::new();
    let engine = schemars::schema_for!(EngineSettings);
    for provider in registry::providers() {
        let mut properties = Map::new();
        let mut required = vec![Value::String("provider".into())];
        properties.insert("provider".into(), json!({ "const": provider.name, "description": provider.description }));
        for schema in [engine.clone(), (provider.settings_schema)()] {
            let value = schema.to_value();
            if let Some(nested) = value.get("$defs").and_then(Value::as_object) {
                for (k, v) in nested {
                    defs.insert(k.clone(), v.clone());
                }
            }
            if let Some(props) = value.get("properties").and_then(Value::as_object) {
                for (k, v) in props {
                    properties.insert(k.clone(), v.clone());
                }
            }
            if let Some(req) = value.get("required").and_then(Value::as_array) {
                required.extend(req.iter().cloned());
            }
        }
        defs.insert(
            provider.name.to_string(),
            json!({
                "type": "object",
                "description": provider.description,
                "properties": properties,
                "required": required,
                "additionalProperties": false,
            }),
        );
        alternatives.push(json!({ "$ref": format!("#/$defs/{}", provider.name) }));
    }
    defs.insert("profile".into(), json!({ "oneOf": alternatives }));
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://age-oauth.invalid/schemas/profile.schema.json",
        "title": "age-oauth profile file (config.toml, age-oauth.toml)",
        "description": "Named profiles, each naming a provider and its non-secret settings. Secrets never go here.",
        "type": "object",
        "properties": {
            "default_profile": { "type": "string", "description": "Profile used when neither --profile nor AGE_OAUTH_PROFILE is given." },
            "profiles": { "type": "object", "additionalProperties": { "$ref": "#/$defs/profile" } }
        },
        "additionalProperties": false,
        "$defs": defs,
    })
}
