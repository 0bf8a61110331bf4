//! The site's Python. It is run once, because `python3` on PATH may be a pyenv shim, a
//! module's wrapper or a venv, and only the interpreter itself knows its real executable and
//! version.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::{error::UserError, settings::Environ};

/// Ask the interpreter about itself, one fact a line. `_base_executable` sees through a venv,
/// so an env created while another env is active still sits on the real site Python. The
/// script imports nothing beyond what the interpreter has loaded at start-up: `json` and
/// `importlib.util` would double the cost of the probe.
const PROBE: &str = r#"import sys, os
e = getattr(sys, "_base_executable", None) or sys.executable
print(os.path.realpath(e))
print("%d.%d.%d" % sys.version_info[:3])
print(sys.implementation.name)
for p in sys.path:
    print(p)
"#;

/// Whether `pip` is importable from these `sys.path` entries. Checked on every create, even
/// with a cached probe, because pip can be installed later without the interpreter changing.
fn has_pip(sys_path: &[PathBuf]) -> bool {
    sys_path
        .iter()
        .filter(|p| !p.as_os_str().is_empty())
        .any(|p| p.join("pip/__init__.py").is_file())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SitePython {
    /// The real interpreter, with symlinks and shims resolved.
    pub executable: PathBuf,
    /// Full version, `3.11.7`.
    pub version: String,
    pub major: u32,
    pub minor: u32,
    pub pip: bool,
}

impl SitePython {
    /// `X.Y`, the part that names `lib/pythonX.Y` and the module version.
    pub fn short_version(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
}

/// Find the interpreter to build on: the configured one (a path or a command name), or
/// `python3` on PATH.
pub fn locate(configured: Option<&str>, env: &Environ) -> Result<PathBuf> {
    let wanted = configured.unwrap_or("python3");
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    which::which_in(wanted, env.get("PATH"), cwd).map_err(|_| {
        let (msg, hint) = if configured.is_some() {
            (
                format!("site Python {wanted:?} was not found or is not executable"),
                "pass --site-python PATH, or set `python:` in the config to an existing interpreter",
            )
        } else {
            (
                "no python3 found on PATH".to_string(),
                "load the site's python module (e.g. `module load python`), or pass --site-python PATH",
            )
        };
        UserError::failure(msg).with_hint(hint).into()
    })
}

/// Run the interpreter once and read its facts.
pub fn inspect(interpreter: &Path) -> Result<SitePython> {
    inspect_with_path(interpreter).map(|(python, _)| python)
}

/// The interpreter's facts and its `sys.path`.
fn inspect_with_path(interpreter: &Path) -> Result<(SitePython, Vec<PathBuf>)> {
    // -I keeps PYTHONPATH, PYTHONHOME and the user site out of the answer, so we learn about
    // the interpreter itself and not whatever the current shell stacked on it.
    let out = Command::new(interpreter)
        .args(["-I", "-c", PROBE])
        .output()
        .with_context(|| format!("failed to run site Python {}", interpreter.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(UserError::failure(format!(
            "site Python {} failed to start: {}",
            interpreter.display(),
            stderr.lines().last().unwrap_or("no output").trim()
        ))
        .with_hint("envmod needs Python 3.6 or newer; pass --site-python PATH to choose another")
        .into());
    }
    let not_python = || -> anyhow::Error {
        UserError::failure(format!(
            "{} did not answer like a Python 3 interpreter",
            interpreter.display()
        ))
        .with_hint("pass --site-python PATH to a CPython 3 interpreter")
        .into()
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let [executable, version, implementation, ref sys_path @ ..] = lines[..] else {
        return Err(not_python());
    };
    let sys_path: Vec<PathBuf> = sys_path.iter().map(PathBuf::from).collect();
    let parts: Vec<u32> = version
        .split('.')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| not_python())?;
    let [major, minor, _] = parts[..] else {
        return Err(not_python());
    };
    if major < 3 || (implementation != "cpython" && implementation != "pypy") {
        return Err(UserError::failure(format!(
            "{} is {implementation} {version}; envmod builds on CPython or PyPy 3",
            interpreter.display()
        ))
        .with_hint("pass --site-python PATH to a Python 3 interpreter")
        .into());
    }
    let python = SitePython {
        executable: PathBuf::from(executable),
        version: version.to_string(),
        major,
        minor,
        pip: has_pip(&sys_path),
    };
    Ok((python, sys_path))
}

/// `inspect`, remembered per interpreter binary: the facts of a binary cannot change
/// without its size, mtime or inode changing, so a second create skips the interpreter
/// start entirely (uv does the same). Scripts (pyenv shims, module wrappers) may run a
/// different interpreter each time and are never cached.
pub fn inspect_cached(interpreter: &Path, cache_dir: &Path) -> Result<SitePython> {
    let Some(key) = cache_key(interpreter) else {
        return inspect(interpreter);
    };
    let file = cache_dir.join(format!("{key:016x}.json"));
    if let Some(hit) = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice::<CachedProbe>(&b).ok())
        && hit.interpreter == interpreter
    {
        return Ok(SitePython {
            pip: has_pip(&hit.sys_path),
            ..hit.python
        });
    }
    let (python, sys_path) = inspect_with_path(interpreter)?;
    let entry = CachedProbe {
        interpreter: interpreter.to_path_buf(),
        python: python.clone(),
        sys_path,
    };
    // A cache that cannot be written only costs speed.
    if std::fs::create_dir_all(cache_dir).is_ok()
        && let Ok(json) = serde_json::to_vec(&entry)
    {
        let _ = crate::env::lock::write_atomic(&file, &json);
    }
    Ok(python)
}

#[derive(Serialize, Deserialize)]
struct CachedProbe {
    interpreter: PathBuf,
    python: SitePython,
    sys_path: Vec<PathBuf>,
}

fn cache_key(interpreter: &Path) -> Option<u64> {
    use std::{
        hash::{Hash, Hasher},
        io::Read,
        os::unix::fs::MetadataExt,
    };
    let real = std::fs::canonicalize(interpreter).ok()?;
    let mut head = [0u8; 2];
    std::fs::File::open(&real)
        .ok()?
        .read_exact(&mut head)
        .ok()?;
    if &head == b"#!" {
        return None;
    }
    let meta = std::fs::metadata(&real).ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        interpreter,
        &real,
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
    )
        .hash(&mut h);
    Some(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = "/usr/bin/python3.11";

    #[test]
    fn probe_reads_a_real_interpreter() {
        let py = inspect(Path::new(REAL))
            .expect("Debian's python3.11 is installed by tests/provision.sh");
        assert_eq!((py.major, py.minor), (3, 11));
        assert!(py.version.starts_with("3.11."));
        assert_eq!(py.executable, std::fs::canonicalize(REAL).unwrap());
    }

    #[test]
    fn cached_probe_answers_without_the_interpreter_and_rechecks_pip() {
        let cache = tempfile::tempdir().unwrap();
        let site = tempfile::tempdir().unwrap();
        let interpreter = Path::new(REAL);
        let key = cache_key(interpreter).expect("a real binary has a cache key");
        let planted = CachedProbe {
            interpreter: interpreter.to_path_buf(),
            python: SitePython {
                executable: PathBuf::from("/planted/python3.11"),
                version: "3.11.99".into(),
                major: 3,
                minor: 11,
                pip: true,
            },
            sys_path: vec![site.path().to_path_buf()],
        };
        std::fs::write(
            cache.path().join(format!("{key:016x}.json")),
            serde_json::to_vec(&planted).unwrap(),
        )
        .unwrap();

        let hit = inspect_cached(interpreter, cache.path()).unwrap();
        assert_eq!(hit.version, "3.11.99", "the cache was not used");
        assert!(
            !hit.pip,
            "pip must be checked on disk, not taken from the cache"
        );
        std::fs::create_dir_all(site.path().join("pip")).unwrap();
        std::fs::write(site.path().join("pip/__init__.py"), "").unwrap();
        assert!(inspect_cached(interpreter, cache.path()).unwrap().pip);
    }

    #[test]
    fn scripts_are_never_cached() {
        let dir = tempfile::tempdir().unwrap();
        let shim = dir.path().join("python3");
        std::fs::write(&shim, "#!/bin/sh\nexec /usr/bin/python3.11 \"$@\"\n").unwrap();
        assert_eq!(cache_key(&shim), None);
    }
}
