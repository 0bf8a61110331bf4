//! What envmod writes into a directory that others read, a package cache or a channel, gets
//! the modes that directory gives its readers, not the writer's umask. An instructor with
//! `umask 077` who fills a course's cache, or indexes its channel, would otherwise leave
//! entries only the instructor can open.
//!
//! rattler_index writes repodata on its own threads, so the handle on its modes is the
//! process umask, set while the index is built (nothing else is written meanwhile).

use std::{os::unix::fs::PermissionsExt, path::Path};

use nix::sys::stat::{Mode, umask};

/// The umask under which new entries of `dir` come out as `dir` itself allows: readable and
/// searchable by whom `dir` is, never writable by anyone the writer's umask keeps out, nor by
/// anyone `dir` keeps out. `None` when `dir` cannot be read.
pub(crate) fn umask_following(dir: &Path, current: u32) -> Option<u32> {
    let mode = std::fs::metadata(dir).ok()?.permissions().mode();
    let closed = !mode & 0o077;
    // Read and search bits follow the directory; write bits are kept out where either the
    // directory or the writer's umask keeps them out.
    Some((closed & 0o055) | ((current | closed) & 0o022))
}

/// The umask of this process, from /proc: umask(2) can only read it by setting it, which
/// other threads creating files at that moment would feel.
pub(crate) fn current_umask() -> u32 {
    let from_proc = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        });
    from_proc.unwrap_or_else(|| {
        let old = umask(Mode::from_bits_truncate(0o077));
        umask(old);
        old.bits()
    })
}

/// The umask for new entries of `dir` while this lives; the previous one when it is dropped.
pub(crate) struct UmaskFor {
    previous: Option<Mode>,
}

impl UmaskFor {
    /// A `dir` that cannot be read (not created yet, say) leaves the umask as it is.
    pub(crate) fn dir(dir: &Path) -> Self {
        let previous =
            umask_following(dir, current_umask()).map(|mask| umask(Mode::from_bits_truncate(mask)));
        Self { previous }
    }
}

impl Drop for UmaskFor {
    fn drop(&mut self) {
        if let Some(previous) = self.previous {
            umask(previous);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_for(dir_mode: u32, current: u32) -> u32 {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(dir_mode)).unwrap();
        umask_following(dir.path(), current).unwrap()
    }

    #[test]
    fn entries_follow_the_directory_and_never_open_writing() {
        // A strict writer in a directory everyone, or the group, reads.
        assert_eq!(mask_for(0o755, 0o077), 0o022);
        assert_eq!(mask_for(0o2750, 0o077), 0o027);
        // A lax writer in a private or read-only directory.
        assert_eq!(mask_for(0o700, 0o002), 0o077);
        assert_eq!(mask_for(0o755, 0o002), 0o022);
        assert_eq!(mask_for(0o755, 0o000), 0o022);
        // A group-writable directory lets the group write only when the writer's umask does.
        assert_eq!(mask_for(0o2775, 0o002), 0o002);
        assert_eq!(mask_for(0o2775, 0o077), 0o022);
        assert!(umask_following(Path::new("/nonexistent/envmod"), 0o022).is_none());
    }
}
