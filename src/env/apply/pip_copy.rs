//! The pip part of a clone: every distribution of the source that conda did not install,
//! copied file by file as its RECORD lists them, with the scripts that name the source's
//! prefix pointed at the copy's. The source may be a tree a group can write, so no link is
//! followed on the way, only regular files are read, and a RECORD path that leads out of
//! the environment is passed over.

use std::{
    collections::HashSet,
    ffi::OsStr,
    io::{Read, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Component, Path, PathBuf},
};

use crate::{env::lock::ReadLock, escape::shown, printer::Printer};
use anyhow::{Context, Result};

/// What a clone copies of its source's pip packages, with the source held under its read
/// lock until the copy is done.
pub(crate) struct PipCopy {
    /// The source's directory on disk.
    pub(crate) real: PathBuf,
    /// The source's prefixes, as scripts may name them.
    pub(crate) from: Vec<PathBuf>,
    /// Each distribution's `.dist-info`, relative to the prefix.
    pub(crate) dists: Vec<PathBuf>,
    pub(crate) _lock: ReadLock,
}

/// A RECORD (or a script) larger than this is not one pip wrote.
const RECORD_LIMIT: u64 = 16 << 20;
/// Scripts up to this size have the source's prefix replaced; larger files are copied as
/// they are.
const SCRIPT_LIMIT: u64 = 1 << 20;

/// The `.dist-info` directories in `lib/python*/site-packages` of `real` that no conda
/// package installed and whose installer is not conda.
pub(crate) fn pip_dists(real: &Path) -> Result<Vec<PathBuf>> {
    let owned = conda_dist_infos(real)?;
    let lib = Path::new("lib");
    let mut out = Vec::new();
    for py in crate::fs::list_beneath(real, lib)? {
        if !py.to_string_lossy().starts_with("python") {
            continue;
        }
        let site = lib.join(&py).join("site-packages");
        // No site-packages (or a file, or a link, which is not followed): nothing of pip's.
        let Ok(names) = crate::fs::list_beneath(real, &site) else {
            continue;
        };
        for name in names.iter().filter(|n| ends_with(n, ".dist-info")) {
            let dir = site.join(name);
            if owned.contains(&dir) {
                continue;
            }
            let installer =
                crate::fs::read_beneath(real, &dir.join("INSTALLER"), 256).unwrap_or_default();
            if installer.is_some_and(|b| String::from_utf8_lossy(&b).trim() == "conda") {
                continue;
            }
            out.push(dir);
        }
    }
    Ok(out)
}

/// The directories of the files conda's records list: a dist-info among them is conda's.
fn conda_dist_infos(real: &Path) -> Result<HashSet<PathBuf>> {
    let records = crate::conda::prefix::installed_records(real)?;
    Ok(crate::conda::pip::conda_files(&records)
        .iter()
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect())
}

/// Copy every distribution of `src` into the tree `dir` (the new environment at `to`);
/// the number of files copied.
pub(crate) fn copy(src: &PipCopy, dir: &Path, to: &Path, printer: &Printer) -> Result<usize> {
    let mut copied = 0;
    let umask = crate::fs::umask();
    for dist in &src.dists {
        let record_path = dist.join("RECORD");
        let Some(record) = crate::fs::read_beneath(&src.real, &record_path, RECORD_LIMIT)? else {
            printer.warn(format!(
                "{} has no RECORD; its files are not copied",
                shown(&src.real.join(dist).to_string_lossy())
            ));
            continue;
        };
        let site = dist.parent().unwrap_or(Path::new(""));
        for line in String::from_utf8_lossy(&record).lines() {
            let Some(field) = first_field(line) else {
                continue;
            };
            let Some(rel) = inside(site, &field) else {
                printer.warn(format!(
                    "{}: {field:?} is outside the environment; not copied",
                    shown(&src.real.join(&record_path).to_string_lossy())
                ));
                continue;
            };
            if !pips_to_copy(&rel) {
                printer.warn(format!(
                    "{}: {rel:?} is no file pip installs (envmod and conda keep their own there); not copied",
                    shown(&src.real.join(&record_path).to_string_lossy()),
                ));
                continue;
            }
            // Never over a file a conda package put there.
            if dir.join(&rel).symlink_metadata().is_ok() {
                continue;
            }
            // Compiled code names the source's paths (tracebacks, `__file__` of frames): the
            // copy's are made again from its own sources, by the build's compile step or by
            // Python at the first import.
            if is_compiled(&rel) {
                continue;
            }
            match copy_file(src, &rel, dir, to, umask) {
                Ok(true) => copied += 1,
                Ok(false) => {}
                Err(e) => printer.warn(format!("{}; not copied", shown(&format!("{e:#}")))),
            }
        }
    }
    Ok(copied)
}

/// A `.pyc` in a `__pycache__` directory.
fn is_compiled(rel: &Path) -> bool {
    rel.extension().is_some_and(|e| e == "pyc")
        && rel
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|d| d == "__pycache__")
}

/// Copy the regular file `rel` of the source into `dir`; `false` when it is not there.
fn copy_file(src: &PipCopy, rel: &Path, dir: &Path, to: &Path, umask: u32) -> Result<bool> {
    let mut file = match crate::fs::open_regular_beneath(&src.real, rel) {
        Ok(f) => f,
        Err(e) if e.is_not_found() => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let meta = file.metadata()?;
    let dest = dir.join(rel);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create {}", parent.display()))?;
    }
    let mode = meta.permissions().mode() & 0o777 & !umask;
    let mut out = std::fs::File::options()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(mode)
        .open(&dest)
        .with_context(|| format!("failed to create {}", dest.display()))?;
    let script = rel.starts_with("bin") && meta.len() <= SCRIPT_LIMIT;
    let failed = || format!("failed to copy {}", src.real.join(rel).display());
    if script {
        let mut bytes = Vec::new();
        (&mut file)
            .take(SCRIPT_LIMIT + 1)
            .read_to_end(&mut bytes)
            .with_context(failed)?;
        if bytes.starts_with(b"#!") {
            bytes = repoint(bytes, &src.from, to);
        }
        out.write_all(&bytes).with_context(failed)?;
    } else {
        // At most the size it had when opened: a file that grows meanwhile is not followed.
        std::io::copy(&mut (&mut file).take(meta.len()), &mut out).with_context(failed)?;
    }
    // The umask may have taken bits the mode of a new file keeps.
    out.set_permissions(std::fs::Permissions::from_mode(mode))?;
    Ok(true)
}

/// `script` with every `FROM/` of the source's prefixes replaced by `TO/`.
fn repoint(script: Vec<u8>, from: &[PathBuf], to: &Path) -> Vec<u8> {
    let to = [to.as_os_str().as_encoded_bytes(), b"/"].concat();
    from.iter().fold(script, |text, prefix| {
        let from = [prefix.as_os_str().as_encoded_bytes(), b"/"].concat();
        replace(&text, &from, &to)
    })
}

fn replace(text: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

/// The path field of a RECORD line (CSV: quoted when it holds a comma).
fn first_field(line: &str) -> Option<String> {
    let line = line.trim_end_matches('\r');
    if let Some(rest) = line.strip_prefix('"') {
        let mut field = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => return Some(field),
                c => field.push(c),
            }
        }
        return None;
    }
    let field = line.split(',').next()?;
    (!field.is_empty()).then(|| field.to_owned())
}

/// `field` (relative to `site`) as a plain path relative to the prefix, or `None` when it
/// is absolute or leads out of the prefix.
fn inside(site: &Path, field: &str) -> Option<PathBuf> {
    let joined = site.join(field);
    let mut parts: Vec<&OsStr> = Vec::new();
    for c in joined.components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    let rel: PathBuf = parts.iter().collect();
    crate::conda::prefix::plain(&rel).then_some(rel)
}

/// Where envmod and conda keep what judges, records and activates an environment. A
/// RECORD of a shared source is its group's to write, and a file it names there would
/// become the cloning user's own in the copy: an activation script or a variable a group
/// member added, trusted as if that user had written it.
const NOT_PIPS: [&str; 4] = ["conda-meta", "etc/conda", ".envmod", "bin/activate"];

/// Whether a RECORD path (a plain relative path) is one a pip distribution may own.
fn pips_to_copy(rel: &Path) -> bool {
    !NOT_PIPS.iter().any(|p| rel.starts_with(p))
}

fn ends_with(name: &OsStr, suffix: &str) -> bool {
    name.to_string_lossy().ends_with(suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_paths_stay_inside_the_prefix() {
        let site = Path::new("lib/python3.11/site-packages");
        assert_eq!(
            inside(site, "../../../bin/x").as_deref(),
            Some(Path::new("bin/x"))
        );
        assert_eq!(
            inside(site, "a/__init__.py").as_deref(),
            Some(Path::new("lib/python3.11/site-packages/a/__init__.py"))
        );
        assert_eq!(inside(site, "../../../../etc/passwd"), None);
        assert_eq!(inside(site, "/etc/passwd"), None);
        assert_eq!(inside(site, "../../.."), None);
    }

    #[test]
    fn what_envmod_and_conda_keep_is_never_pips() {
        for rel in [
            "etc/conda/activate.d/x.sh",
            "etc/conda/env_vars.d/x.json",
            "conda-meta/pinned",
            ".envmod/manifest.json",
            "bin/activate",
        ] {
            assert!(!pips_to_copy(Path::new(rel)), "{rel}");
        }
        for rel in [
            "bin/alpha",
            "bin/activate-global-python-argcomplete",
            "etc/jupyter/x.json",
            "lib/python3.11/site-packages/a.py",
        ] {
            assert!(pips_to_copy(Path::new(rel)), "{rel}");
        }
    }

    #[test]
    fn record_fields_are_read_as_csv() {
        assert_eq!(first_field("a/b.py,sha256=x,3").as_deref(), Some("a/b.py"));
        assert_eq!(
            first_field("\"a,\"\"b\"\".py\",,").as_deref(),
            Some("a,\"b\".py")
        );
        assert_eq!(first_field(""), None);
    }

    #[test]
    fn only_whole_prefixes_are_repointed() {
        let from = [PathBuf::from("/envs/a")];
        let out = repoint(
            b"#!/envs/a/bin/python\n# /envs/ab/x /envs/a/y\n".to_vec(),
            &from,
            Path::new("/envs/b"),
        );
        assert_eq!(out, b"#!/envs/b/bin/python\n# /envs/ab/x /envs/b/y\n");
    }
}
