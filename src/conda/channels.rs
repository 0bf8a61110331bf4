//! Channel arguments as users write them: a name resolved through `channel_alias`, a URL,
//! or a local directory (relative or absolute) that becomes a `file://` URL.

use std::path::Path;

use anyhow::Result;
use rattler_conda_types::{Channel, ChannelConfig};

use crate::error::UserError;

/// Resolve one channel argument. A word without `/` is a channel name; anything that looks
/// like a path is a directory, which must exist.
pub fn resolve(raw: &str, alias: &url::Url, cwd: &Path) -> Result<Channel> {
    // `https://mirror/conda` must mean the directory, or URL joining drops its last segment.
    let mut alias = alias.clone();
    if !alias.path().ends_with('/') {
        alias.set_path(&format!("{}/", alias.path()));
    }
    let config = ChannelConfig {
        channel_alias: alias,
        root_dir: cwd.to_path_buf(),
    };
    if raw.contains("://") {
        return Channel::from_str(raw, &config).map_err(|e| bad_channel(raw, e));
    }
    // `conda-forge/label/dev` is a channel name with a label; `chan/` or `./chan` is a path.
    let explicit_path = raw.starts_with('/') || raw.starts_with('.') || raw.starts_with('~');
    let existing_dir = raw.contains('/') && cwd.join(raw).is_dir();
    if explicit_path || existing_dir {
        let expanded = shellexpand::tilde(raw);
        let dir = cwd.join(expanded.as_ref());
        if !dir.is_dir() {
            return Err(UserError::failure(format!(
                "channel directory {} does not exist",
                dir.display()
            ))
            .with_hint("check the path, or run `envmod index DIR` on a directory of packages")
            .into());
        }
        let dir = dir.canonicalize()?;
        let url = url::Url::from_directory_path(&dir).map_err(|()| {
            UserError::failure(format!("cannot turn {} into a file:// URL", dir.display()))
        })?;
        return Ok(Channel::from_url(url));
    }
    Channel::from_str(raw, &config).map_err(|e| bad_channel(raw, e))
}

/// Resolve every channel argument.
pub(crate) fn resolve_all(raw: &[String], alias: &url::Url, cwd: &Path) -> Result<Vec<Channel>> {
    raw.iter().map(|c| resolve(c, alias, cwd)).collect()
}

fn bad_channel(raw: &str, e: impl std::fmt::Display) -> anyhow::Error {
    UserError::usage(format!("invalid channel {raw:?}: {e}"))
        .with_hint("give a channel name (conda-forge), a URL, or a directory path")
        .into()
}

/// How a channel is shown to users and stored in manifests.
pub fn display(channel: &Channel) -> String {
    channel.base_url.as_str().trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_labels_urls_and_paths() {
        let alias = url::Url::parse("https://mirror.example.org/conda").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("local/noarch")).unwrap();
        let url = |raw: &str| display(&resolve(raw, &alias, dir.path()).unwrap());
        assert_eq!(
            url("conda-forge"),
            "https://mirror.example.org/conda/conda-forge"
        );
        assert_eq!(
            url("conda-forge/label/dev"),
            "https://mirror.example.org/conda/conda-forge/label/dev"
        );
        assert_eq!(
            url("https://other.example.org/chan"),
            "https://other.example.org/chan"
        );
        let local = format!(
            "file://{}",
            dir.path().canonicalize().unwrap().join("local").display()
        );
        assert_eq!(url("./local"), local);
        assert_eq!(url("local/"), local);
        assert!(resolve("./missing", &alias, dir.path()).is_err());
    }
}
