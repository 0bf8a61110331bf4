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
    let rows: Vec<(String, String, String)> = entries
        .iter()
        .map(|(key, v)| {
            let shown = match &v["value"] {
                serde_json::Value::Null => "(unset)".to_string(),
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(a) if a.is_empty() => "[]".to_string(),
                other => other.to_string(),
            };
            let source = serde_json::from_value::<crate::settings::Source>(v["source"].clone())
                .map(|s| s.to_string())
                .unwrap_or_default();
            (key.clone(), shown, source)
        })
        .collect();
    let kw = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let vw = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    for (k, v, src) in rows {
        out.push_str(&format!("{k:<kw$}  {v:<vw$}  {src}\n"));
    }
    printer.data(out);
    Ok(())
}
