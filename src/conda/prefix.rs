//! What is installed in a prefix, read from `conda-meta/*.json`, and the care those records
//! need after rattler writes them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rattler_conda_types::PrefixRecord;

use crate::error::UserError;

/// The package records of `prefix`. rattler's reader says "expected value at line 1 column 1"
/// for a damaged record without naming it; this one names the file and the way out.
pub(crate) fn installed_records(prefix: &Path) -> Result<Vec<PrefixRecord>> {
    Ok(named_records(prefix)?.into_iter().map(|(_, r)| r).collect())
}

/// The package records of `prefix` for rattler to change it by. rattler removes, moves and
/// rewrites files by the paths a record gives, unchecked; in an environment a group can
/// write, anyone in it can edit those. So every one of them must be a plain relative path
/// (no `/` at the start, no `..`, `.` or empty components), and a record may list no menu
/// entries (envmod installs none; rattler removes what they name, wherever that is).
/// `shown` is the environment the records describe, for the error: `prefix` may be its
/// staging tree.
pub(crate) fn records_to_change(prefix: &Path, shown: &Path) -> Result<Vec<PrefixRecord>> {
    let mut out = Vec::new();
    for (path, record) in named_records(prefix)? {
        if let Some((field, value)) = unsafe_path(&record) {
            let file = shown
                .join("conda-meta")
                .join(path.file_name().unwrap_or_default());
            return Err(UserError::failure(format!(
                "package record {} gives {field} {value}, which is not a plain path inside the environment; envmod does not let rattler remove or move files by it",
                file.display()
            ))
            .with_hint(
                "someone who can write the environment changed that record: put back the package's own record (or delete the environment and create it again); nothing was changed",
            )
            .into());
        }
        out.push(record);
    }
    Ok(out)
}

/// The first path of `record` that is not a plain relative path, with the field it is in;
/// printed with its quotes and escapes, since it may hold anything.
fn unsafe_path(record: &PrefixRecord) -> Option<(&'static str, String)> {
    let package = &record.repodata_record.package_record;
    let file_name = record.file_name();
    if !plain(Path::new(&file_name)) || file_name.contains('/') {
        return Some(("the name, version and build", format!("{file_name:?}")));
    }
    if let Some(p) = record.files.iter().find(|p| !plain(p)) {
        return Some(("the file", format!("{p:?}")));
    }
    for entry in &record.paths_data.paths {
        for p in std::iter::once(&entry.relative_path).chain(&entry.original_path) {
            if !plain(p) {
                return Some(("the path", format!("{p:?}")));
            }
        }
    }
    if let Some(p) = &package.python_site_packages_path
        && !plain(Path::new(p))
    {
        return Some(("the site-packages path", format!("{p:?}")));
    }
    if !record.installed_system_menus.is_empty() {
        let named = serde_json::to_string(&record.installed_system_menus).unwrap_or_default();
        return Some(("menu entries", named));
    }
    None
}

/// Whether `p` is a plain relative path: names only, each neither empty nor `.` nor `..`.
pub(crate) fn plain(p: &Path) -> bool {
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str());
    !bytes.is_empty()
        && !bytes.contains(&0)
        && bytes
            .split(|b| *b == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b"..")
}

/// Every record of `prefix` with the file it was read from.
fn named_records(prefix: &Path) -> Result<Vec<(PathBuf, PrefixRecord)>> {
    record_paths(&prefix.join("conda-meta"))?
        .into_iter()
        .map(|path| {
            // A group member may swap a record for a FIFO or a link after it was listed.
            let text = crate::fs::read_text(&path, crate::fs::DOCUMENT, crate::fs::Links::Refuse)
                .map_err(|e| {
                    UserError::failure(format!("damaged package record: {e}")).with_hint(format!(
                        "remove or repair that file, or `envmod delete` the environment and create it again; conda-meta of {} lists what is installed",
                        prefix.display()
                    ))
                })?;
            let record = <PrefixRecord as std::str::FromStr>::from_str(&text).map_err(|e| {
                UserError::failure(format!(
                    "damaged package record {}: {e}",
                    path.display()
                ))
                .with_hint(format!(
                    "remove or repair that file, or `envmod delete` the environment and create it again; conda-meta of {} lists what is installed",
                    prefix.display()
                ))
            })?;
            Ok((path, record))
        })
        .collect()
}

fn record_paths(conda_meta: &Path) -> Result<Vec<PathBuf>> {
    // A link there (a group member's) would have the records read from anywhere.
    if let Ok(link) = conda_meta.symlink_metadata()
        && link.is_symlink()
    {
        use std::os::unix::fs::MetadataExt;
        let who = crate::fs::user_name(link.uid()).unwrap_or_else(|| link.uid().to_string());
        return Err(UserError::failure(format!(
            "{} is a symbolic link, made by {who}, which envmod does not follow",
            conda_meta.display()
        ))
        .with_hint("someone who can write the environment put it there: put back its own conda-meta directory, or delete the environment and create it again")
        .into());
    }
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
    fn a_conda_meta_that_is_a_link_is_not_read_through() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("alpha-1.0-0.json"), "{}").unwrap();
        let env = dir.path().join("env");
        std::fs::create_dir_all(&env).unwrap();
        std::os::unix::fs::symlink(&elsewhere, env.join("conda-meta")).unwrap();
        let err = installed_records(&env).unwrap_err();
        let user = err.downcast_ref::<UserError>().unwrap();
        assert!(
            user.message
                .contains("conda-meta is a symbolic link, made by"),
            "{}",
            user.message
        );
    }

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
    fn only_plain_relative_paths_are_plain() {
        for ok in [
            "lib/a.py",
            "bin/x",
            "a",
            "lib/python3.11/site-packages/alpha/__init__.py",
        ] {
            assert!(plain(Path::new(ok)), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/",
            ".",
            "a/..",
        ] {
            assert!(!plain(Path::new(bad)), "{bad}");
        }
    }

    #[test]
    fn a_record_with_a_path_out_of_the_prefix_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let meta = dir.path().join("conda-meta");
        std::fs::create_dir_all(&meta).unwrap();
        let record = |extra: &str| {
            format!(
                r#"{{"name": "alpha", "version": "1.0", "build": "0", "build_number": 0, "subdir": "noarch", "depends": [], "fn": "alpha-1.0-0.conda", "url": "file:///c/noarch/alpha-1.0-0.conda", "channel": "file:///c/", "files": ["lib/a.py"], "paths_data": {{"paths_version": 1, "paths": [{{"_path": "lib/a.py", "path_type": "hardlink"}}{extra}]}}}}"#
            )
        };
        std::fs::write(meta.join("alpha-1.0-0.json"), record("")).unwrap();
        assert_eq!(
            records_to_change(dir.path(), Path::new("/envs/e"))
                .unwrap()
                .len(),
            1
        );
        std::fs::write(
            meta.join("alpha-1.0-0.json"),
            record(
                r#", {"_path": "lib/b.py", "original_path": "../../x", "path_type": "hardlink"}"#,
            ),
        )
        .unwrap();
        let err = records_to_change(dir.path(), Path::new("/envs/e")).unwrap_err();
        let user = err.downcast_ref::<UserError>().unwrap();
        assert!(
            user.message
                .contains("/envs/e/conda-meta/alpha-1.0-0.json gives the path \"../../x\""),
            "{}",
            user.message
        );
        assert!(
            user.hint
                .as_deref()
                .unwrap()
                .contains("nothing was changed")
        );
        // Reading alone does not judge: export and list still show what is there.
        assert_eq!(installed_records(dir.path()).unwrap().len(), 1);
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
