//! A full disk or an exhausted quota, told apart from a broken package. rattler reports both
//! as "failed to link"; users on a cluster then blame the channel when the fix is to free
//! space on, or move off, one filesystem, which the message has to name.

use std::path::{Path, PathBuf};

use crate::error::UserError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoSpace {
    DiskFull,
    QuotaExceeded,
}

/// Whether `err` or any of its causes is ENOSPC or EDQUOT. Some layers of rattler wrap an
/// I/O error into a message string and keep only its text, `… (os error 28)`, so that text
/// counts too.
pub(crate) fn no_space_in(err: &(dyn std::error::Error + 'static)) -> Option<NoSpace> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(kind) = io.raw_os_error().and_then(from_errno) {
                return Some(kind);
            }
            // A custom io::Error's source() skips the error it wraps; look inside.
            if let Some(inner) = io.get_ref()
                && let Some(kind) = no_space_in(inner)
            {
                return Some(kind);
            }
        }
        let text = e.to_string();
        if text.contains(&format!("(os error {})", libc::ENOSPC)) {
            return Some(NoSpace::DiskFull);
        }
        if text.contains(&format!("(os error {})", libc::EDQUOT)) {
            return Some(NoSpace::QuotaExceeded);
        }
        next = e.source();
    }
    None
}

fn from_errno(errno: i32) -> Option<NoSpace> {
    match errno {
        libc::ENOSPC => Some(NoSpace::DiskFull),
        libc::EDQUOT => Some(NoSpace::QuotaExceeded),
        _ => None,
    }
}

/// The error for `kind` on the filesystem that holds `path`, `what` saying what is written
/// there.
pub(crate) fn no_space_error(kind: NoSpace, path: &Path, what: &str) -> UserError {
    let mount = mount_point_of(path).unwrap_or_else(|| path.to_path_buf());
    let mount = mount.display();
    match kind {
        NoSpace::DiskFull => UserError::failure(format!(
            "the disk is full: no space left on {mount}, which holds the {what} ({})",
            path.display()
        ))
        .with_hint(format!(
            "free space on {mount}, or move the {what} to another filesystem; nothing was changed"
        )),
        NoSpace::QuotaExceeded => UserError::failure(format!(
            "disk quota exceeded on {mount}, which holds the {what} ({})",
            path.display()
        ))
        .with_hint(format!(
            "free space within your quota on {mount} (see `quota -s` or your site's quota tool), or move the {what} to a filesystem with room; nothing was changed"
        )),
    }
}

/// The bytes an unprivileged user can still write on the filesystem that holds `path`.
pub(crate) fn available_bytes(path: &Path) -> Option<u64> {
    space(path).map(|(available, _)| available)
}

/// The bytes an unprivileged user can still write on the filesystem that holds `path` (or
/// its nearest existing ancestor), and the filesystem's size.
pub(crate) fn space(path: &Path) -> Option<(u64, u64)> {
    let absolute = std::path::absolute(path).ok()?;
    let existing = absolute.ancestors().find(|p| p.exists())?;
    let stat = nix::sys::statvfs::statvfs(existing).ok()?;
    // The field types differ between targets (32-bit on some), hence the conversions.
    #[allow(clippy::useless_conversion)]
    let (available, total, frsize) = (
        u64::from(stat.blocks_available()),
        u64::from(stat.blocks()),
        u64::from(stat.fragment_size()),
    );
    Some((
        available.saturating_mul(frsize),
        total.saturating_mul(frsize),
    ))
}

/// The mount point of the filesystem that holds `path` (or its nearest existing ancestor),
/// from `/proc/self/mountinfo`: the longest mount point that contains the path.
pub(crate) fn mount_point_of(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    let existing = absolute.ancestors().find(|p| p.exists())?;
    let real = existing.canonicalize().ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mount_points(&mountinfo)
        .into_iter()
        .filter(|m| real.starts_with(m))
        .max_by_key(|m| m.as_os_str().len())
}

/// The mount points in mountinfo text (the fifth field, with `\040`-style octal escapes).
fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_octal(m)))
        .collect()
}

fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
            && let Ok(code) = u8::from_str_radix(&s[i + 1..i + 4], 8)
        {
            out.push(code);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("failed to link alpha")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("the installer failed")]
    struct Top(#[source] Outer);

    #[test]
    fn enospc_and_edquot_are_found_down_the_chain() {
        let full = Top(Outer(std::io::Error::from_raw_os_error(libc::ENOSPC)));
        assert_eq!(no_space_in(&full), Some(NoSpace::DiskFull));
        let quota = Top(Outer(std::io::Error::from_raw_os_error(libc::EDQUOT)));
        assert_eq!(no_space_in(&quota), Some(NoSpace::QuotaExceeded));
        let other = Top(Outer(std::io::Error::from_raw_os_error(libc::EACCES)));
        assert_eq!(no_space_in(&other), None);
    }

    #[test]
    fn a_wrapped_or_stringified_enospc_counts() {
        let wrapped = Outer(std::io::Error::other(std::io::Error::from_raw_os_error(
            libc::ENOSPC,
        )));
        assert_eq!(no_space_in(&wrapped), Some(NoSpace::DiskFull));
        let text = std::io::Error::other(format!(
            "failed to create temp directory in '/x': {}",
            std::io::Error::from_raw_os_error(libc::ENOSPC)
        ));
        assert_eq!(no_space_in(&text), Some(NoSpace::DiskFull));
    }

    #[test]
    fn the_message_names_the_filesystem() {
        let err = no_space_error(
            NoSpace::DiskFull,
            Path::new("/proc/self/nonexistent"),
            "environment",
        );
        assert!(
            err.message.starts_with("the disk is full"),
            "{}",
            err.message
        );
        assert!(err.message.contains("on /proc,"), "{}", err.message);
        let err = no_space_error(NoSpace::QuotaExceeded, Path::new("/"), "package cache");
        assert!(
            err.message.contains("quota exceeded on /"),
            "{}",
            err.message
        );
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        let text = "36 35 98:0 / /mnt/my\\040disk rw,noatime master:1 - ext3 /dev/root rw\n\
                    37 35 98:0 / / rw - ext4 /dev/sda1 rw\n";
        assert_eq!(
            mount_points(text),
            vec![PathBuf::from("/mnt/my disk"), PathBuf::from("/")]
        );
    }
}
