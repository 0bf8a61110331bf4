//! Who, besides the user running envmod and root, could have written a file or put it where
//! it is. envmod runs a few files it did not write itself: an environment's activation
//! scripts, its interpreter, the site Python a manifest names. In a directory a group shares,
//! any member may have changed those; such code then runs as this user only after a warning
//! that names it, or not at all.
//!
//! A file's own owner and mode say who could have changed its content. A directory that
//! others can write lets them replace a file in it, which gives the file their ownership,
//! unless the directory is sticky (`/tmp`), where nobody may replace what another user owns.
//! A group counts as others unless it is this user's own private group with no other member.

use std::{
    os::unix::fs::MetadataExt,
    path::{Component, Path, PathBuf},
};

/// Someone other than this user and root who could have written a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Writer {
    /// The file's owner, by login name.
    User(String),
    /// A group with other members, which may write the file.
    Group(String),
    /// Everyone may write it.
    Anyone,
}

impl Writer {
    /// "that envmod-peer wrote, not you": how a warning names who could have written it.
    pub(crate) fn phrase(&self) -> String {
        match self {
            Writer::User(who) => format!("that {who} wrote, not you"),
            Writer::Group(group) => format!("that members of the group {group} can change"),
            Writer::Anyone => "that anyone can change".to_string(),
        }
    }
}

impl std::fmt::Display for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Writer::User(who) => write!(f, "{who} owns it"),
            Writer::Group(group) => write!(f, "members of the group {group} can change it"),
            Writer::Anyone => write!(f, "anyone can change it"),
        }
    }
}

fn me() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Who other than this user and root could have written the file `meta` describes.
pub(crate) fn writer(meta: &std::fs::Metadata) -> Option<Writer> {
    writer_of(meta.uid(), meta.gid(), meta.mode())
}

fn writer_of(uid: u32, gid: u32, mode: u32) -> Option<Writer> {
    if uid != me() && uid != 0 {
        return Some(Writer::User(
            crate::fs::user_name(uid).unwrap_or_else(|| uid.to_string()),
        ));
    }
    if mode & 0o002 != 0 {
        return Some(Writer::Anyone);
    }
    if mode & 0o020 != 0
        && let Some(group) = shared_group(gid)
    {
        return Some(Writer::Group(group));
    }
    None
}

/// Who other than this user and root could replace an entry of the directory `meta`
/// describes: nobody but root and an entry's owner can in a sticky one.
fn dir_writer(meta: &std::fs::Metadata) -> Option<Writer> {
    if meta.uid() != me() && meta.uid() != 0 {
        return writer_of(meta.uid(), meta.gid(), meta.mode());
    }
    if meta.mode() & 0o1000 != 0 {
        return None;
    }
    writer_of(meta.uid(), meta.gid(), meta.mode())
}

/// The name of group `gid` when someone besides this user is in it. Members whose primary
/// group it is are not listed anywhere cheap to read, so any group but this user's own
/// private one (named after the user, no other member listed) counts as shared.
fn shared_group(gid: u32) -> Option<String> {
    let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid)).ok()??;
    let me = crate::fs::current_user()?;
    let others = group.name != me || group.mem.iter().any(|m| *m != me);
    others.then_some(group.name)
}

/// Why the program at `path` may have been put there by someone other than this user and
/// root: the file, or a directory on the way to it (through every symbolic link, each of
/// which must be theirs too), that someone else owns or may write. `Ok(())` when nobody
/// could have; `Err` with the place and who, or with why it cannot be found.
pub(crate) fn program(path: &Path) -> Result<(), String> {
    if !path.is_absolute() {
        return Err(format!("{} is not an absolute path", path.display()));
    }
    let root = Path::new("/")
        .metadata()
        .map_err(|e| format!("cannot read /: {e}"))?;
    if let Some(w) = dir_writer(&root) {
        return Err(format!("/: {w}"));
    }
    walk(path, |at, meta, last| {
        let who = if last {
            if !meta.is_file() {
                return Err(format!("{} is not a regular file", at.display()));
            }
            writer(meta)
        } else {
            dir_writer(meta)
        };
        match who {
            Some(w) => Err(format!("{}: {w}", at.display())),
            None => Ok(()),
        }
    })
}

/// Why `path` cannot be reached without following a link that someone other than this user
/// and root made (each such link could lead anywhere its maker likes); `Ok(())` when every
/// link on the way is this user's or root's.
pub(crate) fn own_links(path: &Path) -> Result<(), String> {
    if !path.is_absolute() {
        return Err(format!("{} is not an absolute path", path.display()));
    }
    walk(path, |_, _, _| Ok(()))
}

/// Walk the absolute `path` from `/` as the kernel resolves it, following each symbolic
/// link, which must be this user's or root's, and handing every other component on the way
/// to `visit` (with whether it is the last one).
fn walk(
    path: &Path,
    mut visit: impl FnMut(&Path, &std::fs::Metadata, bool) -> Result<(), String>,
) -> Result<(), String> {
    let mut at = PathBuf::from("/");
    let mut rest = components(path);
    let mut links = 0;
    while let Some(name) = rest.pop_front() {
        if name == ".." {
            at.pop();
            continue;
        }
        let next = at.join(&name);
        let meta = next
            .symlink_metadata()
            .map_err(|e| format!("{}: {e}", next.display()))?;
        if !meta.file_type().is_symlink() {
            visit(&next, &meta, rest.is_empty())?;
            at = next;
            continue;
        }
        if meta.uid() != me() && meta.uid() != 0 {
            let who = crate::fs::user_name(meta.uid()).unwrap_or_else(|| meta.uid().to_string());
            return Err(format!("{} is a link that {who} made", next.display()));
        }
        links += 1;
        if links > 40 {
            return Err(format!("{}: too many symbolic links", path.display()));
        }
        let target = std::fs::read_link(&next).map_err(|e| format!("{}: {e}", next.display()))?;
        if target.is_absolute() {
            at = PathBuf::from("/");
        }
        let mut followed = components(&target);
        followed.extend(rest);
        rest = followed;
    }
    Ok(())
}

fn components(path: &Path) -> std::collections::VecDeque<std::ffi::OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_program_is_judged_by_every_directory_and_link_on_the_way() {
        let dir = tempfile::tempdir().unwrap();
        // The test's own ancestors (/tmp is sticky) are trusted; below it, only what the
        // test makes.
        let base = dir.path().canonicalize().unwrap();
        chmod(&base, 0o755);
        let bin = base.join("bin");
        std::fs::create_dir(&bin).unwrap();
        chmod(&bin, 0o755);
        let exe = bin.join("python");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        chmod(&exe, 0o755);
        assert_eq!(program(&exe), Ok(()));
        let link = base.join("python-link");
        std::os::unix::fs::symlink(&exe, &link).unwrap();
        assert_eq!(program(&link), Ok(()));
        let relative = base.join("rel");
        std::os::unix::fs::symlink("bin/../bin/python", &relative).unwrap();
        assert_eq!(program(&relative), Ok(()));

        chmod(&exe, 0o757);
        let err = program(&link).unwrap_err();
        assert!(err.contains("anyone can change it"), "{err}");
        chmod(&exe, 0o755);
        chmod(&bin, 0o777);
        let err = program(&exe).unwrap_err();
        assert!(err.contains(&bin.display().to_string()), "{err}");
        // Sticky: nobody else can replace the program in it.
        chmod(&bin, 0o1777);
        assert_eq!(program(&exe), Ok(()));
        chmod(&bin, 0o755);
        assert!(program(&bin.join("missing")).is_err());
        assert!(program(&bin).unwrap_err().contains("not a regular file"));
        assert!(program(Path::new("python3")).is_err());
    }
}
