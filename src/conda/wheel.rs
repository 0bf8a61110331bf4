//! Wheels of the distributions pip installed, for bundles: a bundle promises to build the
//! environment with no network, so it must carry every pip package, and pip keeps no copy of
//! a wheel it installed. The wheel pip installed from is used when pip recorded its sha256 and
//! the file still has it; otherwise the wheel is rebuilt from the installed files that the
//! distribution's `RECORD` lists, which reinstalls to the same files.
//!
//! The environment may be shared with a group, so a member could plant a symlink among the
//! installed files: files are opened without following links, and only inside the prefix,
//! so a bundle never carries a file from elsewhere in the owner's account. A member can
//! also edit `RECORD` or the files it lists, so each file is streamed into the wheel (never
//! held whole in memory) and checked against the size and sha256 `RECORD` gives it: a file
//! that changed since pip installed it is refused by name, not bundled as pip's.

use std::{
    collections::BTreeSet,
    fs::File,
    io::{Read, Seek, Write},
    os::unix::fs::PermissionsExt,
    path::{Component, Path, PathBuf},
};

use anyhow::{Context, Result};
use base64::Engine;
use rattler_digest::{HashingReader, HashingWriter, Sha256, Sha256Hash};

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
    let Ok(file) = crate::fs::open_regular(&path, crate::fs::Links::Follow) else {
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

/// One file of the rebuilt wheel: its name in the wheel, where it is installed (relative to
/// the prefix), and what RECORD says it holds.
struct Member {
    name: String,
    path: PathBuf,
    sha256: Option<Sha256Hash>,
    size: Option<u64>,
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
    let record = read_meta(prefix, &dist.dist_info.join("RECORD"))?;
    let wheel_meta = read_meta(prefix, &dist.dist_info.join("WHEEL"))?;
    let scripts = entry_point_scripts(prefix, &dist.dist_info);

    let mut members = Vec::new();
    let mut seen = BTreeSet::new();
    for line in record.lines() {
        let fields = csv_fields(line);
        let Some(recorded) = fields.first().filter(|f| !f.is_empty()).cloned() else {
            continue;
        };
        let sha256 = fields
            .get(1)
            .and_then(|h| h.strip_prefix("sha256="))
            .and_then(|h| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(h.trim_end_matches('='))
                    .ok()
            })
            .and_then(|d| Sha256Hash::try_from(d.as_slice()).ok());
        let size = fields.get(2).and_then(|n| n.trim().parse::<u64>().ok());
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
                path: in_prefix,
                sha256,
                size,
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
        let Some((digest, len)) = add_installed(&mut zip, prefix, member)? else {
            continue;
        };
        record_out.push_str(&format!(
            "{},sha256={},{len}\n",
            csv_field(&member.name),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
        ));
    }
    let record_name = format!("{dist_info_name}/RECORD");
    record_out.push_str(&format!("{},,\n", csv_field(&record_name)));
    start(&mut zip, &record_name, 0o644, record_out.len() as u64)?;
    zip.write_all(record_out.as_bytes())
        .with_context(|| format!("cannot write {record_name} into a wheel"))?;
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

/// Begin the wheel member `name`, whose bytes the caller then writes.
fn start(zip: &mut zip::ZipWriter<File>, name: &str, mode: u32, len: u64) -> Result<()> {
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        // A fixed time: the same environment gives the same wheel, and the same bundle.
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(mode)
        .large_file(len >= u32::MAX as u64);
    zip.start_file(name, options)
        .with_context(|| format!("cannot write {name} into a wheel"))
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

/// Stream the installed file of `member` into the wheel, checked against what RECORD says
/// it holds; the sha256 and length of what went into the wheel, or `None` if the file is
/// gone. The file is opened without following a link anywhere below the prefix, and read as
/// it is copied: a file far larger than RECORD says is refused before a byte is read, and
/// one that changed after pip installed it is refused by name.
fn add_installed(
    zip: &mut zip::ZipWriter<File>,
    prefix: &Path,
    member: &Member,
) -> Result<Option<(Sha256Hash, u64)>> {
    let shown = member.path.display();
    let file = match crate::fs::open_regular_beneath(prefix, &member.path) {
        Ok(f) => f,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(refuse(e.to_string())),
    };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {shown}"))?;
    if let Some(size) = member.size
        && meta.len() != size
    {
        return Err(refuse(format!(
            "{shown} is {} bytes, but its RECORD says {size}: it changed after pip installed it",
            meta.len()
        )));
    }
    let mode = if meta.permissions().mode() & 0o111 != 0 {
        0o755
    } else {
        0o644
    };
    start(zip, &member.name, mode, meta.len())?;
    // One byte past the recorded size tells a file that grew since the fstat.
    let limit = member.size.map_or(u64::MAX, |n| n + 1);
    let mut input = HashingReader::<_, Sha256>::new(file.take(limit));
    let mut output = Tally {
        inner: HashingWriter::<_, Sha256>::new(&mut *zip),
        len: 0,
    };
    let cannot_read = || format!("cannot read {shown}");
    let copied = if member.name.contains(".data/scripts/") {
        // The first line is all that changes: read it alone, then stream the rest.
        let mut head = Vec::new();
        (&mut input)
            .take(SHEBANG_LIMIT)
            .read_to_end(&mut head)
            .with_context(cannot_read)?;
        // A first line longer than that is no `#!` line pip wrote: left as it is.
        let whole_line = head.contains(&b'\n') || (head.len() as u64) < SHEBANG_LIMIT;
        let restored = if whole_line {
            restore_shebang(head.clone())
        } else {
            head.clone()
        };
        output
            .write_all(&restored)
            .with_context(|| format!("cannot write {} into a wheel", member.name))?;
        head.len() as u64 + std::io::copy(&mut input, &mut output).with_context(cannot_read)?
    } else {
        std::io::copy(&mut input, &mut output).with_context(cannot_read)?
    };
    let (_, actual) = input.finalize();
    if member.size.is_some_and(|n| n != copied) {
        return Err(refuse(format!(
            "{shown} changed while it was read: its RECORD says {} bytes",
            member.size.unwrap_or_default()
        )));
    }
    if member.sha256.is_some_and(|h| h != actual) {
        return Err(refuse(format!(
            "{shown} does not have the sha256 its RECORD gives: it changed after pip installed it"
        )));
    }
    let len = output.len;
    let (_, digest) = output.inner.finalize();
    Ok(Some((digest, len)))
}

/// How much of a script is read to find its `#!` line.
const SHEBANG_LIMIT: u64 = 64 << 10;

/// A writer that counts what passes through it.
struct Tally<W> {
    inner: W,
    len: u64,
}

impl<W: Write> Write for Tally<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A metadata file of the distribution (`rel`, below `prefix`), as text.
fn read_meta(prefix: &Path, rel: &Path) -> Result<String> {
    let file = crate::fs::open_regular_beneath(prefix, rel).map_err(|e| refuse(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(META_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse(format!("cannot read {}: {e}", rel.display())))?;
    if bytes.len() as u64 > META_LIMIT {
        return Err(refuse(format!(
            "{} is larger than {} MiB",
            rel.display(),
            META_LIMIT >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|_| refuse(format!("{} is not UTF-8 text", rel.display())))
}

/// The names of the scripts pip writes from `entry_points.txt`.
fn entry_point_scripts(prefix: &Path, dist_info: &Path) -> BTreeSet<String> {
    let Ok(text) = read_meta(prefix, &dist_info.join("entry_points.txt")) else {
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

/// The fields of a RECORD line (CSV: a field holding a comma or a quote is quoted).
fn csv_fields(line: &str) -> Vec<String> {
    let line = line.trim_end_matches('\r');
    let mut out = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' if quoted => quoted = false,
            '"' if field.is_empty() => quoted = true,
            ',' if !quoted => out.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    out.push(field);
    out
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
        assert_eq!(csv_fields("a/b.py,sha256=x,3"), ["a/b.py", "sha256=x", "3"]);
        assert_eq!(csv_fields("\"a,\"\"b\"\".py\",,"), ["a,\"b\".py", "", ""]);
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
