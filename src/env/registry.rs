//! Finding environments again. Those made with `-n` live in `envs_dir`; those made with
//! `-p` anywhere else are remembered in a small registry file, the way conda keeps
//! `environments.txt`.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::manifest::Manifest;

/// A directory that envmod cannot act on as it stands.
#[derive(Debug)]
pub(crate) struct Damaged {
    pub(crate) prefix: PathBuf,
    pub(crate) reason: String,
    /// A copy or move of an environment made elsewhere, rather than a broken one.
    pub(crate) copy: bool,
}

pub(crate) struct Registry {
    file: PathBuf,
}

impl Registry {
    pub(crate) fn new(file: PathBuf) -> Self {
        Self { file }
    }

    fn read(&self) -> Vec<PathBuf> {
        crate::fs::read_text(&self.file, crate::fs::DOCUMENT, crate::fs::Links::Follow)
            .map(|t| {
                t.lines()
                    .filter(|l| !l.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn write(&self, prefixes: &[PathBuf]) -> Result<()> {
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut text = String::new();
        for p in prefixes {
            text.push_str(&p.to_string_lossy());
            text.push('\n');
        }
        crate::fs::write_atomic(&self.file, text.as_bytes())
    }

    pub(crate) fn add(&self, prefix: &Path) -> Result<()> {
        let mut all = self.read();
        if !all.iter().any(|p| p == prefix) && !prefix.to_string_lossy().contains('\n') {
            all.push(prefix.to_path_buf());
            self.write(&all)?;
        }
        Ok(())
    }

    pub(crate) fn remove(&self, prefix: &Path) -> Result<()> {
        let all = self.read();
        if all.iter().any(|p| p == prefix) {
            let kept: Vec<_> = all.into_iter().filter(|p| p != prefix).collect();
            self.write(&kept)?;
        }
        Ok(())
    }

    /// The prefixes made with `-p`, as they were registered.
    pub(crate) fn registered(&self) -> Vec<PathBuf> {
        self.read()
    }

    /// The directories that hold the environments envmod can find: `envs_dir` and the
    /// parents of the registered prefixes, where their leftovers are too.
    pub(crate) fn dirs(&self, envs_dir: &Path) -> Vec<PathBuf> {
        let mut dirs = vec![envs_dir.to_path_buf()];
        for p in self.read() {
            if let Some(parent) = p.parent()
                && !dirs.iter().any(|d| d == parent)
            {
                dirs.push(parent.to_path_buf());
            }
        }
        dirs
    }

    /// Every environment envmod can find, sorted by name then prefix; one whose manifest
    /// cannot be read comes back as its path and the reason.
    pub(crate) fn all(&self, envs_dir: &Path) -> Vec<Result<Manifest, Damaged>> {
        let mut prefixes: Vec<PathBuf> = std::fs::read_dir(envs_dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        prefixes.extend(self.read());
        prefixes.sort();
        prefixes.dedup();
        let mut found: Vec<Result<Manifest, Damaged>> = prefixes
            .iter()
            .filter_map(|p| match Manifest::read(p) {
                Ok(Some(m)) if !crate::fs::same_dir(&m.prefix, p) => Some(Err(Damaged {
                    prefix: p.clone(),
                    reason: format!(
                        "a copy of the environment at {}; re-point it with `envmod module -p {} --relocate`",
                        m.prefix.display(),
                        crate::escape::sh_quote(&p.to_string_lossy())
                    ),
                    copy: true,
                })),
                Ok(Some(m)) => match crate::outputs::check_recorded(&m, p) {
                    Ok(()) => Some(Ok(m)),
                    Err(e) => Some(Err(Damaged {
                        prefix: p.clone(),
                        reason: format!("{e:#}"),
                        copy: false,
                    })),
                },
                // A directory that is not an environment at all is not envmod's to show.
                Ok(None) if !crate::env::prefix::has_envmod_dir(p) => None,
                Ok(None) => Some(Err(Damaged {
                    prefix: p.clone(),
                    reason: "its manifest is missing".into(),
                    copy: false,
                })),
                Err(e) => Some(Err(Damaged {
                    prefix: p.clone(),
                    reason: format!("{e:#}"),
                    copy: false,
                })),
            })
            .collect();
        let key = |r: &Result<Manifest, Damaged>| match r {
            Ok(m) => (m.name.to_string(), m.prefix.clone()),
            Err(d) => (
                d.prefix
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                d.prefix.clone(),
            ),
        };
        found.sort_by_key(key);
        found
    }

    /// The environments in `dirs` (the site's `shared_envs_dirs`): other people's, so one
    /// that cannot be read is left out rather than reported.
    pub(crate) fn shared(dirs: &[PathBuf]) -> Vec<Manifest> {
        let mut found = Vec::new();
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                let p = e.path();
                if let Ok(Some(m)) = Manifest::read(&p)
                    && crate::fs::same_dir(&m.prefix, &p)
                    && crate::outputs::check_recorded(&m, &p).is_ok()
                {
                    found.push(m);
                }
            }
        }
        found.sort_by(|a, b| (a.name.as_str(), &a.prefix).cmp(&(b.name.as_str(), &b.prefix)));
        found
    }
}
