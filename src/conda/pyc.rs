//! Compiled `.pyc` files for everything an install linked, made with the environment's own
//! interpreter inside the staging tree, before the swap, in parallel (`compileall -j 0`) when
//! there are enough files for a process pool to pay, as conda and pixi do. rattler links
//! packages without compiling them; an environment whose users cannot write `__pycache__` (a
//! course environment) would otherwise recompile every imported module on every start.
//! `-s STAGING -p PREFIX` records the final paths in the code objects, so tracebacks name the
//! environment, not the staging directory; the files stay valid after the rename because they
//! check the source's mtime and size, not its path.

use std::{path::Path, process::Command, time::Instant};

use anyhow::Result;

use crate::{printer::Printer, site::run::OutputWithin};

/// The number of `.py` files from which compiling in parallel pays (measured on 2 cores: 12
/// files take 120 ms alone and 170 ms with a pool; 240 files take 1.5 s alone and 0.8 s).
const POOL_FROM: usize = 100;

pub(crate) fn compile(staging: &Path, prefix: &Path, printer: &Printer) -> Result<()> {
    let python = staging.join("bin/python");
    if !python.exists() {
        return Ok(());
    }
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
        .args(["-m", "compileall", "-q", "-j", jobs, "-s"])
        .arg(staging)
        .arg("-p")
        .arg(prefix)
        .args(&dirs)
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .env_remove("PYTHONPYCACHEPREFIX")
        .env("PYTHONNOUSERSITE", "1")
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
