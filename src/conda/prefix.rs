//! What is installed in a prefix, read from `conda-meta/*.json`, and the care those records
//! need after rattler writes them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rattler_conda_types::PrefixRecord;

use crate::error::UserError;

/// The package records of `prefix`. rattler's reader says "expected value at line 1 column 1"
/// for a damaged record without naming it; this one names the file and the way out.
pub(crate) fn installed_records(prefix: &Path) -> Result<Vec<PrefixRecord>> {
    record_paths(&prefix.join("conda-meta"))?
        .iter()
        .map(|path| {
            // A group member may swap a record for a FIFO or a link after it was listed.
            let text = crate::fs::read_text(path, crate::fs::DOCUMENT, crate::fs::Links::Refuse)
                .map_err(|e| {
                    UserError::failure(format!("damaged package record: {e}")).with_hint(format!(
                        "remove or repair that file, or `envmod delete` the environment and create it again; conda-meta of {} lists what is installed",
                        prefix.display()
                    ))
                })?;
            <PrefixRecord as std::str::FromStr>::from_str(&text).map_err(|e| {
                UserError::failure(format!(
                    "damaged package record {}: {e}",
                    path.display()
                ))
                .with_hint(format!(
                    "remove or repair that file, or `envmod delete` the environment and create it again; conda-meta of {} lists what is installed",
                    prefix.display()
                ))
                .into()
            })
        })
        .collect()
}

fn record_paths(conda_meta: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(conda_meta) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(e).with_context(|| format!("failed to read {}", conda_meta.display()));
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("failed to read {}", conda_meta.display()))?;
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && entry.file_name().to_string_lossy().ends_with(".json") {
            paths.push(entry.path());
        }
    }
    paths.sort();
    Ok(paths)
}

/// Replace credentials in every URL of the package records by nothing: rattler records the
/// URL each package was downloaded from, password or `/t/TOKEN/` included, and conda-meta is
/// readable by everyone who may load the environment.
pub(crate) fn strip_credentials_from_records(conda_meta: &Path) -> Result<()> {
    for path in record_paths(conda_meta)? {
        let text = crate::fs::read_text(&path, crate::fs::DOCUMENT, crate::fs::Links::Refuse)?;
        // Cheap test first: a URL with credentials has a userinfo `@` or a token path.
        if !text.contains('@') && !text.contains("/t/") {
            continue;
        }
        let Ok(mut value) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        if !strip_in_value(&mut value) {
            continue;
        }
        let dir = path.parent().unwrap_or(conda_meta);
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("failed to write into {}", dir.display()))?;
        serde_json::to_writer_pretty(&mut tmp, &value)?;
        tmp.persist(&path)
            .with_context(|| format!("failed to replace {}", path.display()))?;
    }
    Ok(())
}

/// Strip credentials from every URL-shaped string in `value`; whether anything changed.
fn strip_in_value(value: &mut serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => match stripped(s) {
            Some(new) => {
                *s = new;
                true
            }
            None => false,
        },
        serde_json::Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, v| strip_in_value(v) | changed),
        serde_json::Value::Object(map) => map
            .values_mut()
            .fold(false, |changed, v| strip_in_value(v) | changed),
        _ => false,
    }
}

/// `s` without credentials, when it is a URL with some, or a `URL::spec` channel spec.
fn stripped(s: &str) -> Option<String> {
    let (url_part, rest) = match s.find("::") {
        Some(i) if s[..i].contains("://") => (&s[..i], &s[i..]),
        _ => (s, ""),
    };
    if !url_part.contains("://") {
        return None;
    }
    let url = url::Url::parse(url_part).ok()?;
    let has_secret = !url.username().is_empty()
        || url.password().is_some()
        || url.path().starts_with("/t/")
        || url.query().is_some();
    if !has_secret {
        return None;
    }
    let clean = rattler_redaction::strip_url_for_serialization(&url);
    // Keep the trailing-slash form of the original, which is how channels are compared.
    let mut clean = clean.to_string();
    if !url_part.ends_with('/') && clean.ends_with('/') && url.path() != "/" {
        clean.pop();
    }
    Some(format!("{clean}{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_record_is_named_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let meta = dir.path().join("conda-meta");
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(meta.join("alpha-1.0-0.json"), "").unwrap();
        std::fs::write(meta.join("history"), "not json, not read").unwrap();
        let err = installed_records(dir.path()).unwrap_err();
        let user = err.downcast_ref::<UserError>().unwrap();
        assert!(
            user.message.contains("alpha-1.0-0.json"),
            "{}",
            user.message
        );
        assert!(!user.message.contains('\n'), "{}", user.message);
        assert!(user.hint.as_deref().unwrap().contains("envmod delete"));
    }

    #[test]
    fn no_conda_meta_is_no_records() {
        let dir = tempfile::tempdir().unwrap();
        assert!(installed_records(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn credentials_are_stripped_from_urls_and_channel_specs() {
        assert_eq!(
            stripped("https://user:secret@host.example/chan/noarch/a-1-0.conda").as_deref(),
            Some("https://host.example/chan/noarch/a-1-0.conda")
        );
        assert_eq!(
            stripped("https://host.example/t/tk-123/chan").as_deref(),
            Some("https://host.example/chan")
        );
        assert_eq!(
            stripped("https://user:secret@host.example/chan::numpy>=1").as_deref(),
            Some("https://host.example/chan::numpy>=1")
        );
        assert_eq!(stripped("https://host.example/chan"), None);
        assert_eq!(stripped("numpy>=1"), None);
        assert_eq!(stripped("user@example.org"), None);
    }

    #[test]
    fn records_are_rewritten_only_when_they_hold_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let with = dir.path().join("a-1-0.json");
        let without = dir.path().join("b-1-0.json");
        std::fs::write(
            &with,
            r#"{"url": "https://u:s3cret@h.example/t/tok/c/noarch/a-1-0.conda", "channel": "https://u:s3cret@h.example/c", "files": ["x"]}"#,
        )
        .unwrap();
        let plain = r#"{"url": "file:///c/noarch/b-1-0.conda"}"#;
        std::fs::write(&without, plain).unwrap();
        strip_credentials_from_records(dir.path()).unwrap();
        let text = std::fs::read_to_string(&with).unwrap();
        assert!(!text.contains("s3cret") && !text.contains("tok"), "{text}");
        assert!(text.contains("https://h.example/c"), "{text}");
        assert_eq!(std::fs::read_to_string(&without).unwrap(), plain);
    }
}
