//! `envmod config`: the resolved settings and where each value came from.

use anyhow::Result;
use serde_json::json;

use crate::{printer::Printer, settings::GlobalSettings};

pub(crate) fn run(s: &GlobalSettings, json: bool, printer: &Printer) -> Result<()> {
    let value = serde_json::to_value(s)?;
    let entries = value.as_object().cloned().unwrap_or_default();
    if json {
        let out = json!({ "files": s.files, "settings": entries });
        printer.data(serde_json::to_string_pretty(&out)? + "\n");
        return Ok(());
    }
    let mut out = String::new();
    let exists = |b: bool| if b { "" } else { " (not found)" };
    out.push_str(&format!(
        "site file: {}{}\n",
        s.files.site.display(),
        exists(s.files.site_exists)
    ));
    out.push_str(&format!(
        "user file: {}{}\n\n",
        s.files.user.display(),
        exists(s.files.user_exists)
    ));
    let mut rows: Vec<(String, String, String)> = Vec::new();
    for (key, v) in &entries {
        if let Some(items) = per_entry(&v["value"]) {
            rows.extend(items.iter().map(|item| entry_row(key, item)));
            continue;
        }
        rows.push((key.clone(), shown(&v["value"]), source_of(&v["source"])));
    }
    let kw = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let vw = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    for (k, v, src) in rows {
        out.push_str(&format!("{k:<kw$}  {v:<vw$}  {src}\n"));
    }
    printer.data(out);
    Ok(())
}

fn shown(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "(unset)".to_string(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) if a.is_empty() => "[]".to_string(),
        other => other.to_string(),
    }
}

fn source_of(value: &serde_json::Value) -> String {
    serde_json::from_value::<crate::settings::Source>(value.clone())
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// The name and the value field of an entry of a setting merged entry by entry
/// (`module_provides`, `site_package_names`), whose entries each have their own source.
const ENTRY_FIELDS: &[(&str, &str)] = &[("pattern", "provides"), ("pypi", "conda")];

/// The entries of such a setting, which get one row each.
fn per_entry(value: &serde_json::Value) -> Option<&Vec<serde_json::Value>> {
    let items = value.as_array()?;
    let (name, _) = ENTRY_FIELDS.iter().find(|(name, _)| {
        items
            .first()
            .is_some_and(|i| i.get(*name).is_some() && i.get("source").is_some())
    })?;
    items
        .iter()
        .all(|i| i.get(*name).is_some())
        .then_some(items)
}

/// `module_provides[openmpi/*]  openmpi {version}, mpi 1.0 openmpi  site file … (replaces the default)`.
fn entry_row(key: &str, item: &serde_json::Value) -> (String, String, String) {
    let (name, values) = ENTRY_FIELDS
        .iter()
        .find(|(name, _)| item.get(*name).is_some())
        .expect("per_entry checked the fields");
    let label = item[*name].as_str().unwrap_or_default();
    let list: Vec<&str> = item[*values]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let value = if list.is_empty() {
        "[]".to_string()
    } else {
        list.join(", ")
    };
    let mut source = source_of(&item["source"]);
    if let Some(replaced) = item.get("replaces") {
        match source_of(replaced).as_str() {
            "default" => source.push_str(" (replaces the default)"),
            other => source.push_str(&format!(" (replaces the one in {other})")),
        }
    }
    (format!("{key}[{label}]"), value, source)
}
