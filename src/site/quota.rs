//! Disk quotas, as the site's `quota` program (quota-tools) reports them. Clusters cap space
//! and file counts per user and per group; a conda environment is tens of thousands of
//! files, so the file limit runs out as often as the space does, and the user only learns it
//! from a failed install. The kernel interfaces differ between local, NFS and XFS quotas;
//! `quota` hides those differences (and asks rpc.rquotad for NFS), so envmod asks it.

use std::{path::PathBuf, process::Command};

use crate::site::run;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    /// Space, in KiB (quota's 1K blocks).
    Space,
    Files,
}

/// One limited resource on one filesystem, for the user or one of the user's groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Usage {
    /// "user alice" or "group course".
    pub(crate) holder: String,
    pub(crate) mount: PathBuf,
    pub(crate) resource: Resource,
    pub(crate) used: u64,
    /// The soft limit when one is set (the one the user is warned about), else the hard one.
    pub(crate) limit: u64,
}

impl Usage {
    /// Used, as a percentage of the limit.
    pub(crate) fn percent(&self) -> u64 {
        self.used.saturating_mul(100) / self.limit.max(1)
    }
}

/// The quotas of the user and the user's groups on the filesystems mounted at `mounts`, or
/// `None` when no `quota` program is on PATH. Filesystems without quotas are not listed.
pub(crate) fn usage(mounts: &[PathBuf], path_var: Option<&str>) -> Option<Vec<Usage>> {
    let quota = run::find_program("quota", path_var)?;
    if mounts.is_empty() {
        return Some(Vec::new());
    }
    // -w: one line per filesystem; -p: grace as a number; -Q: no complaint about an NFS
    // server without rquotad; -f: only these filesystems. Untranslated, for the parser.
    let out = run::output(
        Command::new(quota)
            .args([
                "-u",
                "-g",
                "-w",
                "-p",
                "-Q",
                "--show-mntpoint",
                "--hide-device",
                "-f",
            ])
            .args(mounts)
            .env("LC_ALL", "C"),
        run::QUOTA,
    )
    .ok()?;
    // quota exits 1 both when a user is over quota and when a filesystem has none, so the
    // exit code says nothing; the report does.
    Some(parse(&String::from_utf8_lossy(&out.stdout)))
}

/// The report of `quota -u -g -w -p --show-mntpoint --hide-device`: a heading per user or
/// group (`Disk quotas for user alice (uid 1000):`), a column heading, then per filesystem
/// the mount point, then space used (`*` appended when over), soft limit, hard limit, grace,
/// and the same four for files. A limit of 0 means none.
pub(crate) fn parse(report: &str) -> Vec<Usage> {
    let mut out = Vec::new();
    let mut holder: Option<String> = None;
    for line in report.lines() {
        if let Some(rest) = line.strip_prefix("Disk quotas for ") {
            // "user alice (uid 1000): none": the name is the first two words.
            holder = Some(rest.split(" (").next().unwrap_or(rest).to_string());
            continue;
        }
        let Some(h) = &holder else { continue };
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 9 || fields[0] == "Filesystem" {
            continue;
        }
        // The mount point may hold spaces; the eight numbers are the last fields.
        let nums = &fields[fields.len() - 8..];
        let Some(mount) = strip_fields(line, 8).filter(|m| m.starts_with('/')) else {
            continue;
        };
        let n = |s: &str| s.trim_end_matches('*').parse::<u64>().ok();
        for (resource, cols) in [
            (Resource::Space, &nums[0..3]),
            (Resource::Files, &nums[4..7]),
        ] {
            let (Some(used), Some(soft), Some(hard)) = (n(cols[0]), n(cols[1]), n(cols[2])) else {
                continue;
            };
            let limit = if soft > 0 { soft } else { hard };
            if limit > 0 {
                out.push(Usage {
                    holder: h.clone(),
                    mount: PathBuf::from(mount),
                    resource,
                    used,
                    limit,
                });
            }
        }
    }
    out
}

/// `line` without its last `n` whitespace-separated fields, trimmed.
fn strip_fields(line: &str, n: usize) -> Option<&str> {
    let mut rest = line.trim_end();
    for _ in 0..n {
        rest = rest[..rest.rfind(char::is_whitespace)?].trim_end();
    }
    Some(rest.trim_start())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The layout is quota-tools' printf formats: "%15s" for the mount point, then
    // " %7s%c %6s %7s %7s" for space and the same for files.
    fn row(mount: &str, b: &str, bs: u64, bh: u64, f: &str, fs: u64, fh: u64) -> String {
        format!(
            "{mount:>15} {b:>8} {bs:>6} {bh:>7} {:>7} {f:>8} {fs:>6} {fh:>7} {:>7}\n",
            0, 0
        )
    }

    const HEAD: &str =
        "     Filesystem  blocks   quota   limit   grace   files   quota   limit   grace\n";

    #[test]
    fn reads_user_and_group_limits_per_filesystem() {
        let report = format!(
            "Disk quotas for user alice (uid 1000): \n{HEAD}{}{}Disk quotas for group course (gid 2000): \n{HEAD}{}",
            row("/home9300", "9300", 10000, 12000, "120", 0, 0),
            row("/scratch space", "10", 0, 0, "950", 1000, 1100),
            row("/apps", "5000*", 4000, 0, "3", 0, 0),
        );
        let got = parse(&report);
        let summary: Vec<(String, String, Resource, u64, u64, u64)> = got
            .iter()
            .map(|u| {
                (
                    u.holder.clone(),
                    u.mount.display().to_string(),
                    u.resource,
                    u.used,
                    u.limit,
                    u.percent(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "user alice".into(),
                    "/home9300".into(),
                    Resource::Space,
                    9300,
                    10000,
                    93
                ),
                (
                    "user alice".into(),
                    "/scratch space".into(),
                    Resource::Files,
                    950,
                    1000,
                    95
                ),
                (
                    "group course".into(),
                    "/apps".into(),
                    Resource::Space,
                    5000,
                    4000,
                    125
                ),
            ]
        );
    }

    #[test]
    fn a_report_without_limits_has_no_usage() {
        let report = "Disk quotas for user bob (uid 1001): none\nDisk quotas for group bob (gid 1001): none\n";
        assert!(parse(report).is_empty());
        assert!(parse("").is_empty());
    }

    #[test]
    fn hard_limit_counts_when_there_is_no_soft_one() {
        let report = format!(
            "Disk quotas for user alice (uid 1000): \n{HEAD}{}",
            row("/home", "50", 0, 100, "1", 0, 0)
        );
        let got = parse(&report);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].limit, got[0].percent()), (100, 50));
    }
}
