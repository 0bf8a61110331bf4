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
print(int(any(os.path.isfile(os.path.join(p, "pip", "__init__.py")) for p in sys.path if p)))
"#;

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
    let [executable, version, implementation, pip] = lines[..] else {
        return Err(not_python());
    };
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
    Ok(SitePython {
        executable: PathBuf::from(executable),
        version: version.to_string(),
        major,
        minor,
        pip: pip == "1",
    })
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
        return Ok(hit.python);
    }
    let python = inspect(interpreter)?;
    let entry = CachedProbe {
        interpreter: interpreter.to_path_buf(),
        python: python.clone(),
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
