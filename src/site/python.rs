//! The site's Python. It is run once, because `python3` on PATH may be a pyenv shim, a
//! module's wrapper or a venv, and only the interpreter itself knows its real executable and
//! version.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::{environ::Environ, error::UserError, site::run};

/// Ask the interpreter about itself, one fact a line. `_base_executable` sees through a venv,
/// so an env created while another env is active still sits on the real site Python. The
/// interpreter runs with `-I -S`: `site` (which reads every `.pth` file of a large site
/// installation) is not run, and the script imports nothing beyond what the interpreter has
/// loaded at start-up. The site-packages directories are derived from `base_prefix` instead
/// (see `library_dirs`).
const PROBE: &str = r#"import sys, os
e = getattr(sys, "_base_executable", None) or sys.executable
print(os.path.realpath(e))
print("%d.%d.%d" % sys.version_info[:3])
print(sys.implementation.name)
print(sys.base_prefix)
print(getattr(sys, "platlibdir", "lib"))
for p in sys.path:
    print(p)
"#;

/// Where packages of this interpreter can live: its start-up `sys.path` (the standard
/// library) and the site-packages directories `site` would add, for upstream builds,
/// Debian's `dist-packages` layout, free-threaded builds and PyPy.
fn library_dirs(
    base_prefix: &Path,
    platlibdir: &str,
    implementation: &str,
    (major, minor): (u32, u32),
    sys_path: Vec<PathBuf>,
) -> Vec<PathBuf> {
    let mut dirs = sys_path;
    let lib = |rest: String| base_prefix.join(rest);
    // In `site`'s order, which decides which of two copies of a distribution counts:
    // Debian's is local/lib/pythonX.Y/dist-packages, lib/python3/dist-packages, then
    // lib/pythonX.Y/dist-packages.
    for name in [
        format!("python{major}.{minor}"),
        format!("python{major}.{minor}t"),
    ] {
        for libdir in [platlibdir, "lib"] {
            dirs.push(lib(format!("{libdir}/{name}/site-packages")));
        }
        dirs.push(lib(format!("local/lib/{name}/dist-packages")));
    }
    dirs.push(lib(format!("lib/python{major}/dist-packages")));
    for name in [
        format!("python{major}.{minor}"),
        format!("python{major}.{minor}t"),
    ] {
        dirs.push(lib(format!("lib/{name}/dist-packages")));
    }
    if implementation == "pypy" {
        dirs.push(lib(format!("lib/pypy{major}.{minor}/site-packages")));
        dirs.push(lib("site-packages".to_string()));
    }
    absolute_dirs(dirs)
}

/// `dirs` without the empty and relative entries, and each once, the first kept. An older
/// interpreter's `sys.path` starts with `''`, the working directory: scanning that, or any
/// relative entry, would let whoever wrote the directory envmod runs in fake packages.
fn absolute_dirs(dirs: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    dirs.into_iter()
        .filter(|d| d.is_absolute() && seen.insert(d.clone()))
        .collect()
}

/// Whether `pip` is importable from these directories (`library_dirs`). Checked on every create, even
/// with a cached probe, because pip can be installed later without the interpreter changing.
fn has_pip(sys_path: &[PathBuf]) -> bool {
    sys_path
        .iter()
        .filter(|p| p.is_absolute())
        .any(|p| p.join("pip/__init__.py").is_file())
}

/// A Python interpreter an environment runs on: the site's (site mode), or the conda Python
/// installed in the environment (conda mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Interpreter {
    /// The real interpreter, with symlinks and shims resolved.
    pub(crate) executable: PathBuf,
    /// Full version, `3.11.7`.
    pub(crate) version: String,
    pub(crate) major: u32,
    pub(crate) minor: u32,
    pub(crate) pip: bool,
}

impl Interpreter {
    /// The conda Python of version `version` in `prefix`: `bin/pythonX.Y` there.
    pub(crate) fn conda(prefix: &Path, version: String, pip: bool) -> Self {
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(3), parts.next().unwrap_or(0));
        Self {
            executable: prefix.join(format!("bin/python{major}.{minor}")),
            version,
            major,
            minor,
            pip,
        }
    }

    /// `X.Y`, the part that names `lib/pythonX.Y` and the module version.
    pub(crate) fn short_version(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
}

/// Find the interpreter to build on: the configured one (a path or a command name), or
/// `python3` on PATH.
pub(crate) fn locate(configured: Option<&str>, env: &Environ) -> Result<PathBuf> {
    let found = find(configured, env)?;
    if configured.is_none()
        && let Some(prefix) = conda_prefix_of(&found)
    {
        // An old conda environment's module (conda-env-mod's) puts its `bin` first on PATH:
        // its Python is that environment's, not the site's, and building on it would tie the
        // new environment to the old one.
        let module = super::modules::loaded_mentioning(env, &prefix.to_string_lossy())
            .into_iter()
            .next();
        let unload = match &module {
            Some(m) => format!("`module unload {m}`, "),
            None => String::new(),
        };
        return Err(UserError::usage(format!(
            "the python3 first on PATH, {}, is inside the conda environment {}{}, not the site's Python",
            found.display(),
            prefix.display(),
            module.map(|m| format!(" (module {m})")).unwrap_or_default()
        ))
        .with_hint(format!(
            "{unload}or pass --site-python PATH to build on it anyway"
        ))
        .into());
    }
    Ok(found)
}

/// The prefix of a conda environment `python` is the interpreter of: `conda-meta/` beside its
/// `bin/`. A venv-style prefix (envmod's own, with `pyvenv.cfg`) runs a site interpreter and
/// does not count.
fn conda_prefix_of(python: &Path) -> Option<PathBuf> {
    let prefix = python.parent()?.parent()?;
    let is_dir = |p: PathBuf| p.symlink_metadata().is_ok_and(|m| m.is_dir());
    (is_dir(prefix.join("conda-meta")) && !prefix.join("pyvenv.cfg").exists())
        .then(|| prefix.to_path_buf())
}

fn find(configured: Option<&str>, env: &Environ) -> Result<PathBuf> {
    let wanted = configured.unwrap_or("python3");
    // A path is the user's own choice, relative to where envmod runs; a name is looked up on
    // the absolute entries of PATH only.
    let found = if wanted.contains('/') {
        which::which_in(wanted, None::<&str>, env.cwd()).ok()
    } else {
        run::find_program(wanted, env.get("PATH"))
    };
    found.ok_or_else(|| {
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

/// What a probe learnt: the interpreter, and the directories its distributions live in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Probed {
    pub(crate) python: Interpreter,
    /// Absolute directories only, each once, in the interpreter's search order (`sys.path`
    /// at start-up, then the site-packages directories `site` would add).
    pub(crate) library_dirs: Vec<PathBuf>,
}

/// The facts of an interpreter, being learnt: either already known from the cache, or an
/// interpreter started and not yet waited for, so the caller can do other work while it runs.
///
/// The facts of a binary cannot change without its size, mtime or inode changing, so they are
/// remembered per binary and a second create skips the interpreter start entirely (uv does
/// the same). Scripts (pyenv shims, module wrappers) may run a different interpreter each
/// time and are never cached.
pub(crate) struct Probe {
    interpreter: PathBuf,
    state: ProbeState,
}

enum ProbeState {
    Known(Probed),
    Running {
        started: run::Started,
        /// Where to remember the answer, for a binary that can be cached.
        cache_file: Option<PathBuf>,
    },
}

impl Probe {
    /// Look in the cache (when given one), or start the interpreter.
    pub(crate) fn start(interpreter: &Path, cache_dir: Option<&Path>) -> Result<Self> {
        let cache_file = cache_dir
            .zip(cache_key(interpreter))
            .map(|(dir, key)| dir.join(format!("{key:016x}.json")));
        if let Some(file) = &cache_file
            && let Some(hit) =
                crate::fs::read_regular(file, crate::fs::SMALL_FILE, crate::fs::Links::Refuse)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<CachedProbe>(&b).ok())
            && hit.interpreter == interpreter
        {
            // An entry an older envmod wrote may still hold `''`.
            let library_dirs = absolute_dirs(hit.sys_path);
            let python = Interpreter {
                pip: has_pip(&library_dirs),
                ..hit.python
            };
            return Ok(Self {
                interpreter: interpreter.to_path_buf(),
                state: ProbeState::Known(Probed {
                    python,
                    library_dirs,
                }),
            });
        }
        // -I keeps PYTHONPATH, PYTHONHOME and the user site out of the answer, so we learn
        // about the interpreter itself and not whatever the current shell stacked on it.
        let mut cmd = Command::new(interpreter);
        cmd.args(["-I", "-S", "-c", PROBE]);
        Ok(Self {
            interpreter: interpreter.to_path_buf(),
            state: ProbeState::Running {
                started: run::start(cmd, run::SITE_PYTHON),
                cache_file,
            },
        })
    }

    /// The interpreter's facts and its library directories, waiting for it if it is still
    /// running.
    pub(crate) fn wait(self) -> Result<Probed> {
        let (started, cache_file) = match self.state {
            ProbeState::Known(probed) => return Ok(probed),
            ProbeState::Running {
                started,
                cache_file,
            } => (started, cache_file),
        };
        let out = started
            .wait()
            .map_err(|e| no_answer(&self.interpreter, e))?;
        let (python, library_dirs) = parse_probe(&self.interpreter, &out)?;
        if let Some(file) = cache_file {
            remember(&self.interpreter, &file, &python, &library_dirs);
        }
        Ok(Probed {
            python,
            library_dirs,
        })
    }
}

/// A site Python that did not run, or did not answer in time (a wrapper waiting on a
/// licence server, a dead network filesystem): envmod says so rather than hang.
pub(crate) fn no_answer(interpreter: &Path, e: run::RunError) -> anyhow::Error {
    if e.timed_out() {
        return UserError::failure(format!("site Python {}", e))
            .with_hint(
                "check that it starts (`python3 -c pass`), or choose another with --site-python",
            )
            .into();
    }
    anyhow::Error::new(e).context(format!(
        "failed to run site Python {}",
        interpreter.display()
    ))
}

/// Write a probe's answer to the cache. A cache that cannot be written only costs speed.
fn remember(interpreter: &Path, file: &Path, python: &Interpreter, library_dirs: &[PathBuf]) {
    let entry = CachedProbe {
        interpreter: interpreter.to_path_buf(),
        python: python.clone(),
        sys_path: library_dirs.to_vec(),
    };
    if let Some(dir) = file.parent()
        && std::fs::create_dir_all(dir).is_ok()
        && let Ok(json) = serde_json::to_vec(&entry)
    {
        let _ = crate::fs::write_atomic(file, &json);
    }
}

/// The interpreter's facts and the directories its packages can live in.
fn parse_probe(
    interpreter: &Path,
    out: &std::process::Output,
) -> Result<(Interpreter, Vec<PathBuf>)> {
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
    let [
        executable,
        version,
        implementation,
        base_prefix,
        platlibdir,
        ref sys_path @ ..,
    ] = lines[..]
    else {
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
    let dirs = library_dirs(
        Path::new(base_prefix),
        platlibdir,
        implementation,
        (major, minor),
        sys_path.iter().map(PathBuf::from).collect(),
    );
    let python = Interpreter {
        executable: PathBuf::from(executable),
        version: version.to_string(),
        major,
        minor,
        pip: has_pip(&dirs),
    };
    Ok((python, dirs))
}

#[derive(Serialize, Deserialize)]
struct CachedProbe {
    interpreter: PathBuf,
    python: Interpreter,
    /// The directories packages can live in (`library_dirs`), searched again for pip on
    /// every use.
    sys_path: Vec<PathBuf>,
}

fn cache_key(interpreter: &Path) -> Option<u64> {
    use std::{
        hash::{Hash, Hasher},
        os::unix::fs::MetadataExt,
    };
    let real = std::fs::canonicalize(interpreter).ok()?;
    let head = crate::fs::read_head(&real, 2, crate::fs::Links::Follow).ok()?;
    if head.len() < 2 || head == b"#!" {
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
    use std::process::Stdio;

    use super::*;

    const REAL: &str = "/usr/bin/python3.11";

    /// Run the interpreter once, without the cache, and read its facts.
    fn inspect(interpreter: &Path) -> Result<Interpreter> {
        Probe::start(interpreter, None)?.wait().map(|p| p.python)
    }

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
            python: Interpreter {
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

        let hit = Probe::start(interpreter, Some(cache.path()))
            .unwrap()
            .wait()
            .unwrap()
            .python;
        assert_eq!(hit.version, "3.11.99", "the cache was not used");
        assert!(
            !hit.pip,
            "pip must be checked on disk, not taken from the cache"
        );
        std::fs::create_dir_all(site.path().join("pip")).unwrap();
        std::fs::write(site.path().join("pip/__init__.py"), "").unwrap();
        assert!(
            Probe::start(interpreter, Some(cache.path()))
                .unwrap()
                .wait()
                .unwrap()
                .python
                .pip
        );
    }

    #[test]
    fn pip_is_found_exactly_when_the_interpreter_can_import_it() {
        let interpreters = ["/usr/bin/python3.11", "/usr/bin/python3"]
            .into_iter()
            .map(PathBuf::from)
            .chain(which::which_all("python3").into_iter().flatten())
            .filter(|p| p.is_file());
        for py in interpreters {
            let imports = Command::new(&py)
                .args(["-I", "-c", "import pip"])
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success();
            assert_eq!(inspect(&py).unwrap().pip, imports, "{}", py.display());
        }
    }

    #[test]
    fn site_packages_layouts_are_searched() {
        let base = tempfile::tempdir().unwrap();
        let dirs = |platlibdir: &str, implementation: &str, version: (u32, u32)| {
            library_dirs(base.path(), platlibdir, implementation, version, Vec::new())
        };
        let with_pip = |rel: &str| {
            let d = base.path().join(rel);
            std::fs::create_dir_all(d.join("pip")).unwrap();
            std::fs::write(d.join("pip/__init__.py"), "").unwrap();
            d
        };
        assert!(!has_pip(&dirs("lib", "cpython", (3, 12))));
        let upstream = with_pip("lib64/python3.12/site-packages");
        assert!(has_pip(&dirs("lib64", "cpython", (3, 12))));
        assert!(!has_pip(&dirs("lib", "cpython", (3, 12))));
        assert!(!has_pip(&dirs("lib64", "cpython", (3, 11))));
        std::fs::remove_dir_all(upstream).unwrap();
        with_pip("lib/python3/dist-packages");
        assert!(has_pip(&dirs("lib", "cpython", (3, 11))));
        assert!(!has_pip(&dirs("lib", "cpython", (4, 0))));
        with_pip("lib/pypy3.10/site-packages");
        assert!(has_pip(&dirs("lib", "pypy", (3, 10))));
    }

    #[test]
    fn library_dirs_reach_the_caller_and_the_cache_gives_the_same() {
        let cache = tempfile::tempdir().unwrap();
        let interpreter = Path::new(REAL);
        let first = Probe::start(interpreter, Some(cache.path())).unwrap();
        assert!(matches!(first.state, ProbeState::Running { .. }));
        let probed = first.wait().unwrap();
        let dirs = &probed.library_dirs;
        for want in ["/usr/lib/python3.11", "/usr/lib/python3/dist-packages"] {
            assert!(
                dirs.contains(&PathBuf::from(want)),
                "{want} not in {dirs:?}"
            );
        }
        assert!(dirs.iter().all(|d| d.is_absolute()), "{dirs:?}");
        let pos = |d: &str| dirs.iter().position(|x| x == Path::new(d)).unwrap();
        assert!(
            pos("/usr/local/lib/python3.11/dist-packages") < pos("/usr/lib/python3/dist-packages")
                && pos("/usr/lib/python3/dist-packages") < pos("/usr/lib/python3.11/dist-packages"),
            "not in site's order: {dirs:?}"
        );
        let second = Probe::start(interpreter, Some(cache.path())).unwrap();
        assert!(
            matches!(second.state, ProbeState::Known(_)),
            "the answer was not cached"
        );
        assert_eq!(second.wait().unwrap(), probed);
    }

    #[test]
    fn relative_and_empty_entries_are_never_library_dirs() {
        let base = Path::new("/opt/py");
        let sys_path = [
            "",
            "rel/dir",
            ".",
            "/opt/py/lib/python3.11",
            "/opt/py/lib/python3.11",
        ];
        let dirs = library_dirs(
            base,
            "lib",
            "cpython",
            (3, 11),
            sys_path.iter().map(PathBuf::from).collect(),
        );
        assert_eq!(dirs[0], Path::new("/opt/py/lib/python3.11"));
        assert!(dirs.iter().all(|d| d.is_absolute()), "{dirs:?}");
        let unique: std::collections::HashSet<_> = dirs.iter().collect();
        assert_eq!(unique.len(), dirs.len(), "{dirs:?}");

        // A cache entry (an older envmod's, or planted) holding them gives none either.
        let cache = tempfile::tempdir().unwrap();
        let site = tempfile::tempdir().unwrap();
        let key = cache_key(Path::new(REAL)).unwrap();
        let planted = CachedProbe {
            interpreter: PathBuf::from(REAL),
            python: inspect(Path::new(REAL)).unwrap(),
            sys_path: ["", "rel"]
                .iter()
                .map(PathBuf::from)
                .chain([site.path().to_path_buf()])
                .collect(),
        };
        std::fs::write(
            cache.path().join(format!("{key:016x}.json")),
            serde_json::to_vec(&planted).unwrap(),
        )
        .unwrap();
        let hit = Probe::start(Path::new(REAL), Some(cache.path()))
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(hit.library_dirs, [site.path()]);
    }

    #[test]
    fn scripts_are_never_cached() {
        let dir = tempfile::tempdir().unwrap();
        let shim = dir.path().join("python3");
        std::fs::write(&shim, "#!/bin/sh\nexec /usr/bin/python3.11 \"$@\"\n").unwrap();
        assert_eq!(cache_key(&shim), None);
    }
}
