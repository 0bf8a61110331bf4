//! Compiled `.pyc` files for everything an install linked, made inside the staging tree,
//! before the swap, in parallel (`compileall -j 0`) when there are enough files for a
//! process pool to pay, as conda and pixi do. rattler links packages without compiling them;
//! an environment whose users cannot write `__pycache__` (a course environment) would
//! otherwise recompile every imported module on every start. `-s STAGING -p PREFIX` records
//! the final paths in the code objects, so tracebacks name the environment, not the staging
//! directory; the files stay valid after the rename because they check the source's mtime
//! and size, not its path.
//!
//! Compiling needs only the standard library, and it runs as the user: so the interpreter
//! starts isolated (`-I -S`: no `.pth` file, `sitecustomize`, `PYTHON*` variable, user site
//! or working directory is read), and it must be one that nobody else could have changed.
//! In site mode that is the site's interpreter, started directly, never through the
//! environment's `bin/python` and `pyvenv.cfg` (which name where the standard library is
//! read from, and which the group of a shared environment can change); and `bin/python`
//! must still be the link envmod made. In conda mode it is the environment's own, the
//! python package's file: run only if it, the files it reads at start and its standard
//! library could be written by nobody but this user and root. In a group-shared conda
//! environment that holds only while the package is freshly linked (at create); later
//! changes leave the new packages without `.pyc` files, and say so.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::Result;

use crate::{fs::trust, printer::Printer, site::run::OutputWithin};

/// `compile_pyc`: whether create, install and remove compile what they link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompilePyc {
    /// Only where the users cannot write the cache: see [`Policy::wants`].
    Auto,
    Always,
    Never,
}

impl serde::Serialize for CompilePyc {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CompilePyc::Auto => s.serialize_str("auto"),
            CompilePyc::Always => s.serialize_bool(true),
            CompilePyc::Never => s.serialize_bool(false),
        }
    }
}

impl<'de> serde::Deserialize<'de> for CompilePyc {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Choice;
        impl serde::de::Visitor<'_> for Choice {
            type Value = CompilePyc;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false or auto")
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<CompilePyc, E> {
                Ok(if b {
                    CompilePyc::Always
                } else {
                    CompilePyc::Never
                })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CompilePyc, E> {
                match v.to_ascii_lowercase().as_str() {
                    "auto" => Ok(CompilePyc::Auto),
                    "1" | "true" | "yes" | "on" => Ok(CompilePyc::Always),
                    "0" | "false" | "no" | "off" => Ok(CompilePyc::Never),
                    _ => Err(E::custom("is not one of true, false, auto")),
                }
            }
        }
        d.deserialize_any(Choice)
    }
}

/// When an environment gets `.pyc` files. Python writes a module's cache itself the first
/// time someone who can write its directory imports it, so compiling pays only where the
/// environment's users cannot: under `auto`, an environment that is shared (`--shared`,
/// `share`), or that lies in one of the site's `shared_envs_dirs` (where environments are
/// made for others). Every command on an environment decides again by the same rule, from
/// its manifest and its place, so `install` and `remove` do what `create` did.
#[derive(Debug, Clone)]
pub struct Policy {
    pub setting: CompilePyc,
    /// `shared_envs_dirs`.
    pub shared_dirs: Vec<PathBuf>,
}

impl Policy {
    /// Whether to compile the environment at `real` (its real path, existing or not).
    pub(crate) fn wants(&self, shared: bool, real: &Path) -> bool {
        match self.setting {
            CompilePyc::Always => true,
            CompilePyc::Never => false,
            CompilePyc::Auto => {
                shared
                    || self.shared_dirs.iter().any(|d| {
                        let d = d.canonicalize().unwrap_or_else(|_| d.clone());
                        real.starts_with(d)
                    })
            }
        }
    }
}

/// The number of `.py` files from which compiling in parallel pays (measured on 2 cores: 12
/// files take 120 ms alone and 170 ms with a pool; 240 files take 1.5 s alone and 0.8 s).
const POOL_FROM: usize = 100;

/// Which interpreter compiles.
pub(crate) enum Compiler<'a> {
    /// Site mode: the site's interpreter, or why envmod may not start it.
    Site(Result<&'a Path, String>),
    /// Conda mode: the environment's own `bin/pythonMAJOR.MINOR`.
    Conda { major: u32, minor: u32 },
}

pub(crate) fn compile(
    staging: &Path,
    prefix: &Path,
    interpreter: &Compiler<'_>,
    printer: &Printer,
) -> Result<()> {
    if staging.join("bin/python").symlink_metadata().is_err() {
        return Ok(());
    }
    let python = match choose(staging, prefix, interpreter) {
        Ok(python) => python,
        Err(why) => {
            printer.warn(format!(
                "not compiling .pyc files in {}: {why}; envmod starts no interpreter someone else could have changed, so the new packages import from their sources",
                prefix.display()
            ));
            return Ok(());
        }
    };
    let mut dirs = Vec::new();
    if let Ok(entries) = std::fs::read_dir(staging.join("lib")) {
        for e in entries.flatten() {
            let site = e.path().join("site-packages");
            if e.file_name().to_string_lossy().starts_with("python") && site.is_dir() {
                dirs.push(site);
            }
        }
    }
    if dirs.is_empty() {
        return Ok(());
    }
    dirs.sort();
    let started = Instant::now();
    // A process pool costs ~50 ms to start, more than it saves on a few dozen files.
    let jobs = if has_sources(&dirs, POOL_FROM) {
        "0"
    } else {
        "1"
    };
    let out = Command::new(&python)
        .args(["-I", "-S", "-m", "compileall", "-q", "-j", jobs, "-s"])
        .arg(staging)
        .arg("-p")
        .arg(prefix)
        .args(&dirs)
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .env_remove("PYTHONPYCACHEPREFIX")
        .env("PYTHONNOUSERSITE", "1")
        .current_dir("/")
        .output_within(crate::site::run::LONG);
    match out {
        Ok(out) if out.status.success() => {
            printer.detail(format!("compiled .pyc files in {:.0?}", started.elapsed()))
        }
        // Packages ship files that do not compile (Python 2 examples, templates); conda
        // leaves those alone too, and the environment works without their .pyc.
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            printer.detail(format!(
                "some files did not compile to .pyc (they are imported from source): {first}"
            ));
        }
        Err(e) => printer.warn(format!(
            "could not compile .pyc files with {}: {e}",
            python.display()
        )),
    }
    Ok(())
}

/// The interpreter to start for `staging` (which becomes `prefix`), or why there is none
/// envmod may start. The staging tree is private, so only what it holds matters: its files
/// may be hard links to the live environment's, which share their owner and mode.
fn choose(staging: &Path, prefix: &Path, interpreter: &Compiler<'_>) -> Result<PathBuf, String> {
    let shown = |p: &Path| prefix.join(p.strip_prefix(staging).unwrap_or(p));
    match interpreter {
        Compiler::Site(site) => {
            let exe = site.clone()?;
            match std::fs::read_link(staging.join("bin/python")) {
                Ok(to) if to == exe => Ok(exe.to_path_buf()),
                Ok(to) => Err(format!(
                    "{} links to {}, not to the site Python {} that envmod linked it to",
                    prefix.join("bin/python").display(),
                    to.display(),
                    exe.display()
                )),
                Err(_) => Err(format!(
                    "{} is not the link to the site Python {} that envmod made",
                    prefix.join("bin/python").display(),
                    exe.display()
                )),
            }
        }
        Compiler::Conda { major, minor } => {
            let exe = staging.join(format!("bin/python{major}.{minor}"));
            let meta = exe
                .symlink_metadata()
                .map_err(|e| format!("{}: {e}", shown(&exe).display()))?;
            if !meta.is_file() {
                return Err(format!(
                    "{} is not the python package's file",
                    shown(&exe).display()
                ));
            }
            if let Some(w) = trust::writer(&meta) {
                return Err(format!("{}: {w}", shown(&exe).display()));
            }
            let stdlib = staging.join(format!("lib/python{major}.{minor}"));
            match startup_files(staging, &stdlib) {
                Some((file, w)) => Err(format!("{}: {w}", shown(&file).display())),
                None => Ok(exe),
            }
        }
    }
}

/// The first file that a conda interpreter in `staging` reads as it starts, or imports from
/// `stdlib` (its standard library, `site-packages` aside), that someone else could have
/// written, and who.
fn startup_files(staging: &Path, stdlib: &Path) -> Option<(PathBuf, trust::Writer)> {
    let judge = |path: &Path| {
        let meta = path.metadata().ok()?;
        trust::writer(&meta).map(|w| (path.to_path_buf(), w))
    };
    // What getpath reads beside the interpreter and the prefix: `pyvenv.cfg` (whose `home`
    // says where the standard library is), `._pth` files (which replace sys.path), and the
    // shared libpython.
    for dir in [
        staging.to_path_buf(),
        staging.join("bin"),
        staging.join("lib"),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if (name == "pyvenv.cfg" || name.ends_with("._pth") || name.starts_with("libpython"))
                && let Some(found) = judge(&e.path())
            {
                return Some(found);
            }
        }
    }
    let mut stack = vec![stdlib.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                if dir != stdlib || e.file_name() != "site-packages" {
                    stack.push(e.path());
                }
            } else if let Some(found) = judge(&e.path()) {
                return Some(found);
            }
        }
    }
    None
}

/// Whether the trees under `dirs` hold at least `n` `.py` files; stops counting at `n`.
fn has_sources(dirs: &[std::path::PathBuf], n: usize) -> bool {
    let mut stack: Vec<std::path::PathBuf> = dirs.to_vec();
    let mut found = 0;
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                stack.push(e.path());
            } else if e.file_name().as_encoded_bytes().ends_with(b".py") {
                found += 1;
                if found >= n {
                    return true;
                }
            }
        }
    }
    false
}

/// Remove the bytecode of the `.py` files among `unlinked` (paths relative to `root`), before
/// the files themselves are unlinked: envmod's compile and Python's own first import write
/// `__pycache__/NAME.TAG.pyc` files that no package record lists. Python trusts such a file
/// while its source has the size and mtime the file recorded, and packages are built with
/// fixed mtimes, so the next version of a file would run the old code; and a removed package
/// would leave its `__pycache__` (and so its directory) behind. `root` is a private staging
/// tree whose contents came from the environment, which its group may write: no link in it
/// is followed. Returns how many files were removed.
pub(crate) fn remove_bytecode<'a>(
    root: &Path,
    unlinked: impl IntoIterator<Item = &'a Path>,
) -> std::io::Result<usize> {
    use std::{collections::BTreeMap, ffi::OsStr, path::Component};

    use crate::fs::tree::{Dir, Kind};

    let mut by_dir: BTreeMap<&Path, Vec<&OsStr>> = BTreeMap::new();
    for path in unlinked {
        if path.extension() == Some(OsStr::new("py"))
            && let (Some(parent), Some(stem)) = (path.parent(), path.file_stem())
        {
            by_dir.entry(parent).or_default().push(stem);
        }
    }
    if by_dir.is_empty() {
        return Ok(0);
    }
    // `root` is envmod's own (a held `/proc/self/fd` path); below it no link is followed.
    let top = Dir::open_following(root)?;
    let mut removed = 0;
    'dirs: for (parent, stems) in by_dir {
        let mut dir = None;
        for c in parent.components() {
            let Component::Normal(name) = c else {
                continue 'dirs;
            };
            match dir.as_ref().unwrap_or(&top).open_dir(name) {
                Ok(next) => dir = Some(next),
                Err(_) => continue 'dirs,
            }
        }
        let dir = dir.as_ref().unwrap_or(&top);
        let cache_name = OsStr::new("__pycache__");
        let Ok(cache) = dir.open_dir(cache_name) else {
            continue;
        };
        for (name, kind) in cache.entries()? {
            if kind != Some(Kind::Dir) && stems.iter().any(|s| is_bytecode_of(&name, s)) {
                match cache.remove_at(&name, false) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        // Left when empty, rattler then removes the package's directory as it unlinks it.
        let _ = dir.remove_at(cache_name, true);
    }
    Ok(removed)
}

/// Whether `name` (in a `__pycache__`) is the bytecode of the module `stem`:
/// `STEM.TAG.pyc` or `STEM.TAG.opt-N.pyc`, for any interpreter's TAG.
fn is_bytecode_of(name: &std::ffi::OsStr, stem: &std::ffi::OsStr) -> bool {
    let (Some(name), Some(stem)) = (name.to_str(), stem.to_str()) else {
        return false;
    };
    let Some(rest) = name
        .strip_prefix(stem)
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.strip_suffix(".pyc"))
    else {
        return false;
    };
    match rest.split_once('.') {
        None => !rest.is_empty(),
        Some((tag, opt)) => {
            !tag.is_empty()
                && opt
                    .strip_prefix("opt-")
                    .is_some_and(|n| n.parse::<u8>().is_ok())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn bytecode_names_of_a_module() {
        let of = |name: &str, stem: &str| is_bytecode_of(OsStr::new(name), OsStr::new(stem));
        assert!(of("core.cpython-311.pyc", "core"));
        assert!(of("core.cpython-312.opt-2.pyc", "core"));
        assert!(of("core.pypy310.pyc", "core"));
        assert!(!of("core.pyc", "core"));
        assert!(!of("core_x.cpython-311.pyc", "core"));
        assert!(!of("core.x.cpython-311.pyc", "core"));
        assert!(!of("core.cpython-311.py", "core"));
    }

    #[test]
    fn removes_the_bytecode_of_unlinked_sources_only_and_follows_no_link() {
        let root = tempfile::tempdir().unwrap();
        let pkg = root.path().join("lib/site-packages/pkg");
        std::fs::create_dir_all(pkg.join("__pycache__")).unwrap();
        for f in [
            "core.cpython-311.pyc",
            "core.cpython-311.opt-1.pyc",
            "other.cpython-311.pyc",
        ] {
            std::fs::write(pkg.join("__pycache__").join(f), "").unwrap();
        }
        // A planted link: the directory it leads to is not touched.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("evil.cpython-311.pyc"), "").unwrap();
        let linked = root.path().join("lib/site-packages/linked");
        std::fs::create_dir_all(&linked).unwrap();
        std::os::unix::fs::symlink(outside.path(), linked.join("__pycache__")).unwrap();
        let n = remove_bytecode(
            root.path(),
            [
                Path::new("lib/site-packages/pkg/core.py"),
                Path::new("lib/site-packages/linked/evil.py"),
                Path::new("lib/site-packages/pkg/data.txt"),
            ],
        )
        .unwrap();
        assert_eq!(n, 2);
        let left: Vec<_> = std::fs::read_dir(pkg.join("__pycache__"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["other.cpython-311.pyc"]);
        assert!(outside.path().join("evil.cpython-311.pyc").exists());
    }
}
