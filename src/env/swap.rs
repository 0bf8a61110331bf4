//! Changing an environment without ever showing a half-changed one: the change is made on a
//! hard-linked clone beside the prefix, and the clone is swapped in with one atomic
//! `renameat2(RENAME_EXCHANGE)`. Running jobs keep their open files; new ones see either the
//! old tree or the new one.
//!
//! The clone is built from the live tree, which a group may write, so it is checked before
//! anything works in it: nothing that writes or removes files below it by path (rattler,
//! pip, the pyc compile, envmod itself) may be led out of it by a symbolic link.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};

use crate::{error::UserError, fs::tree};

/// Directories whose files rattler and envmod rewrite; they are copied, not linked, so a
/// write in the clone can never reach the live environment. They must be directories: what
/// is written into them would otherwise go wherever a link there leads.
const COPIED_DIRS: &[&str] = &["conda-meta", ".envmod"];

/// The name of the tree in its staging directory (see `cleanup::Staging`).
pub(crate) const TREE: &str = "tree";

/// The clone of a live tree, private to this user until [`open_up`].
#[derive(Debug)]
pub(crate) struct Staged {
    pub(crate) root: tree::Dir,
    /// The live root's mode, which the clone's root gets when it is opened up.
    pub(crate) mode: u32,
}

/// Recreate `src` as [`TREE`] in `into` (see `fs::tree::clone_tree`): directories and
/// symlinks as they are, regular files as hard links (copies where linking is refused, and
/// under the metadata directories), in a new directory nobody else can enter. Refused,
/// before anything changes, when the live tree holds directories this user could not remove
/// once it is replaced, or links that lead out of it: `allowed` are the ones envmod made
/// itself that may (relative path, target).
pub(crate) fn clone_tree(
    src: &Path,
    into: &tree::Dir,
    allowed: &[(PathBuf, PathBuf)],
) -> Result<Staged> {
    let from = tree::Dir::open(src).with_context(|| format!("failed to open {}", src.display()))?;
    let cloned = tree::clone_tree(&from, into, OsStr::new(TREE), COPIED_DIRS)?;
    if !cloned.blockers.is_empty() {
        let (problem, fix) = crate::fs::blocked::blocked_by(&cloned.blockers);
        return Err(UserError::failure(format!(
            "cannot change {}: envmod replaces its files with new ones, and could not remove the old ones: {problem}",
            src.display()
        ))
        .with_hint(format!("{fix}; nothing was changed"))
        .into());
    }
    check_links(src, &from, &cloned.root, allowed)?;
    Ok(Staged {
        root: cloned.root,
        mode: from.meta().mode,
    })
}

/// Refuse a clone that holds a link where envmod keeps its own records, or a link that
/// leads out of the environment. The clone is private, so what is checked there is what
/// the steps after see; who made a link is read from the live tree, where the link is
/// still its maker's (in the clone every link is this user's).
fn check_links(
    src: &Path,
    live: &tree::Dir,
    clone: &tree::Dir,
    allowed: &[(PathBuf, PathBuf)],
) -> Result<()> {
    let me = nix::unistd::geteuid().as_raw();
    let maker = |rel: &Path| {
        tree::Node::open_beneath(live, rel)
            .map(|n| n.meta().uid)
            .ok()
    };
    let name_of = |uid: Option<u32>| match uid {
        Some(uid) if uid == me => "you".to_string(),
        Some(uid) => crate::fs::user_name(uid).unwrap_or_else(|| format!("user {uid}")),
        None => "someone".to_string(),
    };
    let fix = |who: &str, what: String| match who {
        "you" => format!("{what}; nothing was changed"),
        _ => format!("{what}, or ask {who} to; nothing was changed"),
    };
    for name in COPIED_DIRS {
        let Ok(meta) = clone.meta_at(OsStr::new(name)) else {
            continue;
        };
        if meta.kind != tree::Kind::Dir {
            let who = name_of(maker(Path::new(name)));
            return Err(UserError::failure(format!(
                "cannot change {}: {:?} is not a directory but a link or a file that {who} made, where envmod keeps the environment's own records; envmod does not follow it",
                src.display(),
                src.join(name)
            ))
            .with_hint(fix(&who, "put the directory back in its place".into()))
            .into());
        }
    }
    let escapes = tree::escaping_links(clone, allowed)?;
    // Someone else's link first: the likeliest reason, and the one to ask about.
    let mut found: Vec<(tree::Escape, Option<u32>)> = escapes
        .into_iter()
        .map(|e| {
            let uid = maker(&e.link);
            (e, uid)
        })
        .collect();
    found.sort_by_key(|(_, uid)| *uid == Some(me));
    let Some((first, uid)) = found.first() else {
        return Ok(());
    };
    let who = name_of(*uid);
    let link = src.join(&first.link);
    let more = match found.len() {
        1 => String::new(),
        n => format!(" ({} more such links)", n - 1),
    };
    Err(UserError::failure(format!(
        "cannot change {}: {link:?} is a symbolic link that {who} made to {:?}, outside the environment{more}; envmod does not install through a link that leads out of an environment, which would write or remove files wherever it leads",
        src.display(),
        first.target,
    ))
    .with_hint(fix(
        &who,
        format!(
            "remove the link (rm {})",
            crate::escape::sh_quote(&link.to_string_lossy())
        ),
    ))
    .into())
}

/// Give a private staging tree its final mode, the last step before it moves into place:
/// the shared modes, or `mode`.
pub(crate) fn open_up(root: &tree::Dir, share: Option<&crate::fs::Share>, mode: u32) -> Result<()> {
    match share {
        Some(modes) => modes.apply_node(root),
        None => root
            .set_mode(mode)
            .with_context(|| format!("failed to set the mode of {}", root.path().display())),
    }
}

/// Where the two-rename fallback parks the live tree while the new one moves in.
pub(crate) fn swap_aside(prefix: &Path) -> std::path::PathBuf {
    let name = prefix
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    prefix.with_file_name(format!(".{name}.envmod-swap"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, symlink};

    /// Clone `src` into a new directory beside it; the clone's path, or the error.
    fn clone(src: &Path, allowed: &[(PathBuf, PathBuf)]) -> Result<(Staged, PathBuf)> {
        let outer = src.with_file_name("staging");
        let _ = std::fs::create_dir(&outer);
        let into = tree::Dir::open(&outer).unwrap();
        let _ = std::fs::remove_dir_all(outer.join(TREE));
        clone_tree(src, &into, allowed).map(|s| (s, outer.join(TREE)))
    }

    #[test]
    fn clone_links_files_copies_metadata_and_keeps_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("env");
        std::fs::create_dir_all(src.join("lib/pkg")).unwrap();
        std::fs::create_dir_all(src.join("conda-meta")).unwrap();
        std::fs::write(src.join("lib/pkg/mod.py"), "x = 1\n").unwrap();
        std::fs::write(src.join("conda-meta/pkg.json"), "{}").unwrap();
        symlink("lib", src.join("lib64")).unwrap();
        let (staged, dst) = clone(&src, &[]).unwrap();
        assert_eq!(
            std::fs::metadata(&dst).unwrap().mode() & 0o777,
            0o700,
            "private until it is opened up"
        );
        open_up(&staged.root, None, staged.mode).unwrap();
        assert_eq!(
            std::fs::metadata(&dst).unwrap().mode() & 0o7777,
            std::fs::metadata(&src).unwrap().mode() & 0o7777
        );
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        assert_eq!(
            ino(&src.join("lib/pkg/mod.py")),
            ino(&dst.join("lib/pkg/mod.py"))
        );
        assert_ne!(
            ino(&src.join("conda-meta/pkg.json")),
            ino(&dst.join("conda-meta/pkg.json"))
        );
        assert_eq!(
            std::fs::read_link(dst.join("lib64")).unwrap(),
            Path::new("lib")
        );
    }

    fn refusal(src: &Path, allowed: &[(PathBuf, PathBuf)]) -> String {
        let err = clone(src, allowed).unwrap_err();
        let user = err.downcast_ref::<UserError>().expect("a user error");
        assert!(!user.message.contains('\n'), "{}", user.message);
        user.message.clone()
    }

    #[test]
    fn links_that_lead_out_of_the_tree_are_refused_and_links_within_it_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(outside.join("deep")).unwrap();
        let src = dir.path().join("env");
        std::fs::create_dir_all(src.join("lib/python3.11/site-packages/alpha")).unwrap();
        std::fs::create_dir_all(src.join("bin")).unwrap();
        std::fs::create_dir_all(src.join("conda-meta")).unwrap();
        symlink("lib", src.join("lib64")).unwrap();
        symlink("python3.11/site-packages", src.join("lib/sp")).unwrap();
        symlink("../lib64/sp/alpha", src.join("bin/alpha-dir")).unwrap();
        symlink("not-there-yet", src.join("bin/dangling")).unwrap();
        let python = PathBuf::from("/usr/bin/python3.11");
        symlink(&python, src.join("bin/python")).unwrap();
        let allowed = vec![(PathBuf::from("bin/python"), python.clone())];
        clone(&src, &allowed).expect("links within the tree, and envmod's own, are kept");

        let cases = [
            (
                "lib/python3.11/site-packages/beta",
                outside.display().to_string(),
            ),
            (
                "lib/python3.11/site-packages/beta",
                "../../../../outside".to_string(),
            ),
            // Through a link that stays inside, then out.
            ("bin/up", "../lib64/../../outside".to_string()),
            // Through envmod's own link to the interpreter, to the directory it is in.
            ("bin/site", "python/..".to_string()),
            // Past a name that is not there, which an install may make a link.
            ("bin/later", "not-there/../../..".to_string()),
            // A loop.
            ("bin/loop", "loop/x".to_string()),
        ];
        for (link, target) in cases {
            symlink(&target, src.join(link)).unwrap();
            let message = refusal(&src, &allowed);
            assert!(
                message.contains(&format!("{:?}", src.join(link))) && message.contains(&target),
                "{link} -> {target}: {message}"
            );
            std::fs::remove_file(src.join(link)).unwrap();
        }
        // envmod's own link, pointed elsewhere, is no longer its own.
        std::fs::remove_file(src.join("bin/python")).unwrap();
        symlink(&outside, src.join("bin/python")).unwrap();
        assert!(refusal(&src, &allowed).contains("bin/python"));
    }

    #[test]
    fn metadata_directories_must_be_directories() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let src = dir.path().join("env");
        std::fs::create_dir_all(src.join("conda-meta")).unwrap();
        for name in [".envmod", "conda-meta"] {
            let _ = std::fs::remove_dir(src.join(name));
            symlink(&elsewhere, src.join(name)).unwrap();
            let message = refusal(&src, &[]);
            assert!(
                message.contains(&format!("{:?}", src.join(name))),
                "{message}"
            );
            assert!(
                message.contains("made by you") || message.contains("you made"),
                "{message}"
            );
            std::fs::remove_file(src.join(name)).unwrap();
            std::fs::create_dir(src.join(name)).unwrap();
        }
        clone(&src, &[]).unwrap();
    }
}
