//! Wheels of the distributions pip installed, for bundles: a bundle promises to build the
//! environment with no network, so it must carry every pip package, and pip keeps no copy of
//! a wheel it installed. The wheel pip installed from is used when pip recorded its sha256 and
//! the file still has it; otherwise the wheel is rebuilt from the installed files that the
//! distribution's `RECORD` lists, which reinstalls to the same files.
//!
//! The environment may be shared with a group, so a member could plant a symlink among the
//! installed files: files are opened without following links, and only inside the prefix,
//! so a bundle never carries a file from elsewhere in the owner's account.

use std::{
    collections::BTreeSet,
    fs::File,
    io::{Read, Seek, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Component, Path, PathBuf},
};

use anyhow::{Context, Result};
use base64::Engine;
use rattler_digest::{HashingReader, Sha256, Sha256Hash};

use crate::{conda::pip::PipDist, error::UserError};

/// The most a `RECORD`, `WHEEL` or `entry_points.txt` may hold.
const META_LIMIT: u64 = 64 << 20;

/// A wheel to put into a bundle: an unnamed temporary file (or the original wheel, opened).
#[derive(Debug)]
pub(crate) struct BundleWheel {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) file_name: String,
    pub(crate) file: File,
    pub(crate) len: u64,
    pub(crate) sha256: Sha256Hash,
}

/// The wheel of `dist`, installed in `prefix`.
pub(crate) fn for_bundle(prefix: &Path, dist: &PipDist) -> Result<BundleWheel> {
    if let Some(wheel) = original(dist)? {
        return Ok(wheel);
    }
    if let Some(dir) = local_path(dist).filter(|p| p.is_dir()) {
        // An editable install's files are the source tree, which stays on this machine.
        return Err(UserError::failure(format!(
            "cannot bundle the pip package {} {}: it is installed from the directory {}",
            dist.name,
            dist.version,
            dir.display()
        ))
        .with_hint(format!(
            "build a wheel of it (`pip wheel --no-deps {}`) and install that wheel instead",
            dir.display()
        ))
        .into());
    }
    let cannot = |reason: String| -> anyhow::Error {
        UserError::failure(format!(
            "cannot bundle the pip package {} {}: {reason}",
            dist.name, dist.version
        ))
        .with_hint(format!(
            "reinstall it (`pip install --force-reinstall {}=={}`), or uninstall it before exporting",
            dist.name, dist.version
        ))
        .into()
    };
    let built = build(prefix, dist).map_err(|e| match e.downcast::<Refusal>() {
        Ok(Refusal(reason)) => cannot(reason),
        Err(e) => e,
    })?;
    Ok(built)
}

/// A reason `build` cannot rebuild the wheel, worded for "cannot bundle …: REASON".
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refusal(String);

fn refuse(reason: impl Into<String>) -> anyhow::Error {
    Refusal(reason.into()).into()
}

/// The local path pip recorded `dist` was installed from.
fn local_path(dist: &PipDist) -> Option<PathBuf> {
    url::Url::parse(dist.location.as_deref()?)
        .ok()
        .filter(|u| u.scheme() == "file")
        .and_then(|u| u.to_file_path().ok())
}

/// The wheel pip installed `dist` from, when pip recorded its sha256 and it still has it.
fn original(dist: &PipDist) -> Result<Option<BundleWheel>> {
    let (Some(path), Some(expected)) = (local_path(dist), dist.sha256) else {
        return Ok(None);
    };
    let Some(file_name) = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".whl"))
    else {
        return Ok(None);
    };
    let Ok(file) = open_regular(&path, false) else {
        return Ok(None);
    };
    let mut reader = HashingReader::<_, Sha256>::new(&file);
    let len = std::io::copy(&mut reader, &mut std::io::sink())?;
    let (_, actual) = reader.finalize();
    if actual != expected {
        return Ok(None);
    }
    Ok(Some(BundleWheel {
        name: dist.name.clone(),
        version: dist.version.clone(),
        file_name,
        file,
        len,
        sha256: actual,
    }))
}

/// One file of the rebuilt wheel: its name in the wheel and where it is installed.
struct Member {
    name: String,
    path: PathBuf,
}

/// Rebuild the wheel of `dist` from its installed files into an unnamed temporary file.
fn build(prefix: &Path, dist: &PipDist) -> Result<BundleWheel> {
    let dist_info_name = dist
        .dist_info
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| refuse("its .dist-info directory has no name"))?;
    let stem = dist_info_name
        .strip_suffix(".dist-info")
        .ok_or_else(|| refuse("its .dist-info directory is misnamed"))?;
    let site = dist
        .dist_info
        .parent()
        .ok_or_else(|| refuse("its .dist-info directory is not in site-packages"))?;
    let dist_dir = prefix.join(&dist.dist_info);
    let record = read_meta(&dist_dir.join("RECORD"))?;
    let wheel_meta = read_meta(&dist_dir.join("WHEEL"))?;
    let scripts = entry_point_scripts(&dist_dir);

    let mut members = Vec::new();
    let mut seen = BTreeSet::new();
    for line in record.lines() {
        let Some(recorded) = csv_first(line) else {
            continue;
        };
        if recorded.is_empty() {
            continue;
        }
        let Some(in_prefix) = beneath(site, Path::new(&recorded)) else {
            return Err(refuse(format!(
                "it installed {recorded}, outside the environment"
            )));
        };
        let name = if let Ok(in_site) = in_prefix.strip_prefix(site) {
            let name = in_site.to_string_lossy().into_owned();
            let written_by_pip = ["RECORD", "INSTALLER", "REQUESTED", "direct_url.json"]
                .iter()
                .any(|f| name == format!("{dist_info_name}/{f}"))
                || name.starts_with(&format!("{dist_info_name}/RECORD."));
            let compiled = in_site.components().any(|c| c.as_os_str() == "__pycache__")
                && name.ends_with(".pyc");
            if written_by_pip || compiled {
                continue;
            }
            name
        } else if let Ok(script) = in_prefix.strip_prefix("bin") {
            let script = script.to_string_lossy().into_owned();
            // pip writes the entry points' scripts again from entry_points.txt.
            if scripts.contains(&script) {
                continue;
            }
            format!("{stem}.data/scripts/{script}")
        } else {
            format!("{stem}.data/data/{}", in_prefix.display())
        };
        if seen.insert(name.clone()) {
            members.push(Member {
                name,
                path: prefix.join(&in_prefix),
            });
        }
    }
    // The metadata goes last, as the wheel format recommends.
    members.sort_by_key(|m| {
        (
            m.name.starts_with(&format!("{dist_info_name}/")),
            m.name.clone(),
        )
    });

    let tag = wheel_tag(&wheel_meta)
        .ok_or_else(|| refuse("its WHEEL file names no tag (`Tag: py3-none-any`)"))?;
    let file_name = format!(
        "{}-{}-{tag}.whl",
        escape(&dist.name),
        dist.version.replace('-', "_")
    );

    let mut zip =
        zip::ZipWriter::new(tempfile::tempfile().context("cannot make a temporary file")?);
    let mut record_out = String::new();
    for member in &members {
        let Some((bytes, mode)) = read_installed(prefix, &member.path)? else {
            continue;
        };
        let bytes = if member.name.contains(".data/scripts/") {
            restore_shebang(bytes)
        } else {
            bytes
        };
        add(&mut zip, &member.name, &bytes, mode)?;
        let digest = rattler_digest::compute_bytes_digest::<Sha256>(&bytes);
        record_out.push_str(&format!(
            "{},sha256={},{}\n",
            csv_field(&member.name),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
            bytes.len()
        ));
    }
    let record_name = format!("{dist_info_name}/RECORD");
    record_out.push_str(&format!("{},,\n", csv_field(&record_name)));
    add(&mut zip, &record_name, record_out.as_bytes(), 0o644)?;
    let mut file = zip.finish().context("cannot write a wheel")?;
    file.rewind()?;
    let mut reader = HashingReader::<_, Sha256>::new(&file);
    let len = std::io::copy(&mut reader, &mut std::io::sink())?;
    let (_, sha256) = reader.finalize();
    file.rewind()?;
    Ok(BundleWheel {
        name: dist.name.clone(),
        version: dist.version.clone(),
        file_name,
        file,
        len,
        sha256,
    })
}

fn add(zip: &mut zip::ZipWriter<File>, name: &str, bytes: &[u8], mode: u32) -> Result<()> {
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        // A fixed time: the same environment gives the same wheel, and the same bundle.
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(mode)
        .large_file(bytes.len() as u64 >= u32::MAX as u64);
    zip.start_file(name, options)
        .with_context(|| format!("cannot write {name} into a wheel"))?;
    zip.write_all(bytes)
        .with_context(|| format!("cannot write {name} into a wheel"))?;
    Ok(())
}

/// `site` joined with `recorded` (a RECORD path, relative to site-packages), relative to the
/// prefix, when it stays inside the prefix.
fn beneath(site: &Path, recorded: &Path) -> Option<PathBuf> {
    if recorded.is_absolute() {
        return None;
    }
    let mut out = PathBuf::new();
    for c in site.components().chain(recorded.components()) {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// The bytes and mode of an installed file, or `None` if it is gone. Links are refused, in
/// the file's name and in every directory above it inside the prefix.
fn read_installed(prefix: &Path, path: &Path) -> Result<Option<(Vec<u8>, u32)>> {
    let real_prefix = prefix
        .canonicalize()
        .with_context(|| format!("cannot read {}", prefix.display()))?;
    let parent = path.parent().unwrap_or(prefix);
    let real_parent = match parent.canonicalize() {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", parent.display())),
    };
    let expected_parent = real_prefix.join(parent.strip_prefix(prefix).unwrap_or(parent));
    if real_parent != expected_parent {
        return Err(refuse(format!(
            "{} is reached through a symbolic link",
            path.display()
        )));
    }
    let file = match open_regular(path, true) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(refuse(format!("{}: {e}", path.display())));
        }
    };
    let mode = file.metadata()?.permissions().mode();
    let mut bytes = Vec::new();
    (&file)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Some((bytes, if mode & 0o111 != 0 { 0o755 } else { 0o644 })))
}

/// Open `path` for reading if it is a regular file, without blocking on a FIFO (and, with
/// `no_follow`, without following a link).
fn open_regular(path: &Path, no_follow: bool) -> std::io::Result<File> {
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    if no_follow {
        flags |= libc::O_NOFOLLOW;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::other("it is a symbolic link")
            } else {
                e
            }
        })?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    Ok(file)
}

/// A metadata file of the distribution, as text.
fn read_meta(path: &Path) -> Result<String> {
    let file = open_regular(path, true)
        .map_err(|e| refuse(format!("cannot read {}: {e}", path.display())))?;
    let mut text = String::new();
    file.take(META_LIMIT)
        .read_to_string(&mut text)
        .map_err(|e| refuse(format!("cannot read {}: {e}", path.display())))?;
    Ok(text)
}

/// The names of the scripts pip writes from `entry_points.txt`.
fn entry_point_scripts(dist_dir: &Path) -> BTreeSet<String> {
    let Ok(text) = read_meta(&dist_dir.join("entry_points.txt")) else {
        return BTreeSet::new();
    };
    let mut out = BTreeSet::new();
    let mut in_scripts = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_scripts = line == "[console_scripts]" || line == "[gui_scripts]";
        } else if in_scripts && let Some((name, _)) = line.split_once('=') {
            out.insert(name.trim().to_string());
        }
    }
    out
}

/// The file-name tag of a wheel from its `WHEEL` file's `Tag:` lines (`cp311-cp311-linux_x86_64`;
/// several tags compress to `py2.py3-none-any`).
fn wheel_tag(wheel: &str) -> Option<String> {
    let mut parts: [Vec<&str>; 3] = Default::default();
    for line in wheel.lines() {
        let Some(tag) = line.strip_prefix("Tag:") else {
            continue;
        };
        let pieces: Vec<&str> = tag.trim().splitn(3, '-').collect();
        let [py, abi, plat] = pieces[..] else {
            continue;
        };
        for (list, piece) in parts.iter_mut().zip([py, abi, plat]) {
            if !list.contains(&piece) {
                list.push(piece);
            }
        }
    }
    let clean = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'))
    };
    if parts
        .iter()
        .any(|l| l.is_empty() || !l.iter().all(|p| clean(p)))
    {
        return None;
    }
    Some(parts.map(|l| l.join(".")).join("-"))
}

/// A distribution name as a wheel's file name spells it.
fn escape(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('_') {
                out.push('_');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A script's first line back to `#!python`, which pip rewrites to the Python it installs for.
fn restore_shebang(bytes: Vec<u8>) -> Vec<u8> {
    if !bytes.starts_with(b"#!") {
        return bytes;
    }
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let first = String::from_utf8_lossy(&bytes[..end]);
    if !first.contains("python") {
        return bytes;
    }
    let mut out = b"#!python".to_vec();
    out.extend_from_slice(&bytes[end..]);
    out
}

/// The first field of a RECORD line (CSV, quoted when it holds a comma or a quote).
fn csv_first(line: &str) -> Option<String> {
    let line = line.trim_end_matches('\r');
    if let Some(rest) = line.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    out.push('"');
                } else {
                    return Some(out);
                }
            } else {
                out.push(c);
            }
        }
        None
    } else {
        Some(line.split(',').next().unwrap_or_default().to_string())
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_names_and_record_fields() {
        assert_eq!(
            wheel_tag("Wheel-Version: 1.0\nTag: py2-none-any\nTag: py3-none-any\n").as_deref(),
            Some("py2.py3-none-any")
        );
        assert_eq!(
            wheel_tag(
                "Tag: cp311-cp311-manylinux_2_17_x86_64\nTag: cp311-cp311-manylinux2014_x86_64\n"
            )
            .as_deref(),
            Some("cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64")
        );
        assert_eq!(wheel_tag("Tag: py3-none-any/../x\n"), None);
        assert_eq!(wheel_tag("Wheel-Version: 1.0\n"), None);
        assert_eq!(escape("Shared.Tool--x"), "Shared_Tool_x");
        assert_eq!(csv_first("a/b.py,sha256=x,3").as_deref(), Some("a/b.py"));
        assert_eq!(
            csv_first("\"a,\"\"b\"\".py\",,").as_deref(),
            Some("a,\"b\".py")
        );
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        let site = Path::new("lib/python3.11/site-packages");
        assert_eq!(
            beneath(site, Path::new("../../../bin/tool")),
            Some(PathBuf::from("bin/tool"))
        );
        assert_eq!(beneath(site, Path::new("../../../../etc/passwd")), None);
        assert_eq!(beneath(site, Path::new("/etc/passwd")), None);
        assert_eq!(
            restore_shebang(b"#!/opt/env/bin/python3.11\nprint(1)\n".to_vec()),
            b"#!python\nprint(1)\n"
        );
        assert_eq!(
            restore_shebang(b"#!/bin/sh\necho\n".to_vec()),
            b"#!/bin/sh\necho\n"
        );
    }
}
