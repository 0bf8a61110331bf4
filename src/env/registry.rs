//! Finding environments again. Those made with `-n` live in `envs_dir`; those made with
//! `-p` anywhere else are remembered in a small registry file, the way conda keeps
//! `environments.txt`.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::env::manifest::Manifest;

pub struct Registry {
    file: PathBuf,
}

impl Registry {
    pub fn new(file: PathBuf) -> Self {
        Self { file }
    }

    fn read(&self) -> Vec<PathBuf> {
        std::fs::read_to_string(&self.file)
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
        crate::env::lock::write_atomic(&self.file, text.as_bytes())
    }

    pub fn add(&self, prefix: &Path) -> Result<()> {
        let mut all = self.read();
        if !all.iter().any(|p| p == prefix) && !prefix.to_string_lossy().contains('\n') {
            all.push(prefix.to_path_buf());
            self.write(&all)?;
        }
        Ok(())
    }

    pub fn remove(&self, prefix: &Path) -> Result<()> {
        let all = self.read();
        if all.iter().any(|p| p == prefix) {
            let kept: Vec<_> = all.into_iter().filter(|p| p != prefix).collect();
            self.write(&kept)?;
        }
        Ok(())
    }

    /// Every environment with a readable manifest, sorted by name then prefix.
    pub fn all(&self, envs_dir: &Path) -> Vec<Manifest> {
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
        let mut found: Vec<Manifest> = prefixes
            .iter()
            .filter_map(|p| Manifest::read(p).ok().flatten())
            .collect();
        found.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.prefix.cmp(&b.prefix)));
        found
    }
}
