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

/// Ask the interpreter about itself. `_base_executable` sees through a venv, so an env
/// created while another env is active still sits on the real site Python.
const PROBE: &str = r#"
import sys, os, json, importlib.util
exe = getattr(sys, "_base_executable", None) or sys.executable
print(json.dumps({
    "executable": os.path.realpath(exe),
    "version": list(sys.version_info[:3]),
    "implementation": sys.implementation.name,
    "pip": importlib.util.find_spec("pip") is not None,
}))
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

#[derive(Deserialize)]
struct ProbeOutput {
    executable: PathBuf,
    version: Vec<u32>,
    implementation: String,
    pip: bool,
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
    let probe: ProbeOutput = serde_json::from_slice(&out.stdout).map_err(|_| {
        UserError::failure(format!(
            "{} did not answer like a Python 3 interpreter",
            interpreter.display()
        ))
        .with_hint("pass --site-python PATH to a CPython 3 interpreter")
    })?;
    let [major, minor, micro] = probe.version[..] else {
        anyhow::bail!(
            "unexpected version from {}: {:?}",
            interpreter.display(),
            probe.version
        );
    };
    if probe.implementation != "cpython" && probe.implementation != "pypy" {
        anyhow::bail!(
            "unsupported Python implementation {:?}",
            probe.implementation
        );
    }
    Ok(SitePython {
        executable: probe.executable,
        version: format!("{major}.{minor}.{micro}"),
        major,
        minor,
        pip: probe.pip,
    })
}
