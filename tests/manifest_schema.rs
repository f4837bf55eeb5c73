//! `schemas/campaign.schema.json` is generated from the Rust types and
//! checked in. Regenerate it with `T_MINUS_UPDATE_SCHEMA=1 cargo test --test
//! integration manifest_schema`.

use std::path::PathBuf;

use t_minus::manifest::{parse::manifest_files, schema};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn checked_in_schema_is_up_to_date() {
    let path = root().join(schema::SCHEMA_PATH);
    let generated = schema::schema_json();
    if std::env::var_os("T_MINUS_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} is stale: regenerate it with `T_MINUS_UPDATE_SCHEMA=1 cargo test --test integration manifest_schema`",
        schema::SCHEMA_PATH
    );
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&schema::schema()).expect("the schema is a valid JSON Schema")
}

/// YAML documents as JSON values, for the schema validator.
fn documents(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_multiple::<serde_json::Value>(&text).unwrap()
}

#[test]
fn examples_match_the_schema() {
    let validator = validator();
    let mut files = manifest_files(&root().join("examples")).unwrap();
    files.extend(manifest_files(&root().join("tests/fixtures/manifests/valid")).unwrap());
    assert!(files.len() >= 4);
    for file in files {
        for doc in documents(&file) {
            let errors: Vec<String> = validator
                .iter_errors(&doc)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}: {errors:?}", file.display());
        }
    }
}

#[test]
fn the_schema_rejects_what_the_parser_rejects() {
    let validator = validator();
    for (name, doc) in [
        (
            "unknown field",
            serde_json::json!({"campaign": "a", "events": {"x": {"at": "+1m", "atendees": []}}}),
        ),
        (
            "missing at",
            serde_json::json!({"campaign": "a", "events": {"x": {}}}),
        ),
        (
            "bad quorum word",
            serde_json::json!({"campaign": "a", "events": {"x": {"at": "+1m", "quorum": "most"}}}),
        ),
        (
            "bad fire",
            serde_json::json!({"campaign": "a", "events": {"x": {"at": "+1m", "fire": "late"}}}),
        ),
        (
            "bad event name",
            serde_json::json!({"campaign": "a", "events": {"deploy eu": {"at": "+1m"}}}),
        ),
        (
            "bad campaign name",
            serde_json::json!({"campaign": "2a", "events": {}}),
        ),
        ("missing campaign", serde_json::json!({"events": {}})),
    ] {
        assert!(!validator.is_valid(&doc), "{name} passed the schema");
    }
    let ok = serde_json::json!({"campaign": "a", "events": {"x": {"at": "+1m", "quorum": 0, "t_minus": 30}}});
    assert!(validator.is_valid(&ok));
}
