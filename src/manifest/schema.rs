//! The JSON Schema of the manifest format, generated from [`CampaignSpec`].
//!
//! The checked-in copy lives in `schemas/campaign.schema.json`; a test fails
//! when it differs from [`schema_json`] (regenerate it with
//! `T_MINUS_UPDATE_SCHEMA=1 cargo test --test integration manifest_schema`).

use super::spec::CampaignSpec;

/// Where the checked-in schema lives, relative to the repository root.
pub const SCHEMA_PATH: &str = "schemas/campaign.schema.json";

/// The schema as a JSON value (JSON Schema draft 2020-12).
pub fn schema() -> serde_json::Value {
    let schema = schemars::schema_for!(CampaignSpec);
    let mut value = schema.to_value();
    if let Some(obj) = value.as_object_mut() {
        obj.insert(
            "$id".into(),
            serde_json::Value::String(
                "https://github.com/SuperInstance/t-minus/schemas/campaign.schema.json".into(),
            ),
        );
    }
    value
}

/// The schema as pretty-printed JSON text with a final newline, exactly as
/// checked in.
pub fn schema_json() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}
