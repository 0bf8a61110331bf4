//! What doctor lists on disk for its checks: the distributions in a site-packages directory
//! and in an environment, the modulefiles under a module root, and the unpacked bundles a
//! killed command left beside the environments. Only directory listings: no file is read.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use super::Finding;
use crate::escape::sh_quote;

/// Bundles that a killed `create -f` left unpacked beside the environments: nothing else
/// removes them.
pub(super) fn bundle_leftovers(envs_dir: &Path, show: &dyn Fn(&Path) -> String) -> Vec<Finding> {
    let Ok(entries) = std::fs::read_dir(envs_dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".envmod-bundle-")
        })
        .map(|e| Finding {
            check: "leftover",
            problem: format!(
                "{} is a bundle an interrupted `envmod create -f` left unpacked",
                show(&e.path())
            ),
            // An older envmod kept the members' modes, and a directory of mode 0000 stops
            // a plain `rm -rf`.
            fix: {
                let quoted = sh_quote(&e.path().to_string_lossy());
                format!("chmod -R u+rwX {quoted} && rm -rf {quoted}")
            },
        })
        .collect()
}

/// Normalised names of the distributions (`*.dist-info`) in a site-packages directory.
pub(super) fn dist_names(site: &Path) -> BTreeSet<String> {
    std::fs::read_dir(site)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_suffix(".dist-info")
                        .and_then(|s| s.split('-').next().map(normalise))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Normalised names of what an environment installs: its dists and its conda packages.
pub(super) fn env_package_names(prefix: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    if let Ok(libs) = std::fs::read_dir(prefix.join("lib")) {
        for l in libs.flatten() {
            names.extend(dist_names(&l.path().join("site-packages")));
        }
    }
    if let Ok(meta) = std::fs::read_dir(prefix.join("conda-meta")) {
        for e in meta.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if let Some(stem) = n.strip_suffix(".json") {
                // name-version-build: the name is all but the last two parts.
                let parts: Vec<&str> = stem.rsplitn(3, '-').collect();
                if parts.len() == 3 {
                    names.insert(normalise(parts[2]));
                }
            }
        }
    }
    names
}

fn normalise(name: &str) -> String {
    name.to_lowercase().replace(['_', '.'], "-")
}

/// Files directly under `root/NAME/` that look like modulefiles.
pub(super) fn modulefiles(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(root) else {
        return out;
    };
    for d in dirs.flatten() {
        if let Ok(files) = std::fs::read_dir(d.path()) {
            out.extend(files.flatten().map(|f| f.path()).filter(|p| p.is_file()));
        }
    }
    out.sort();
    out
}
