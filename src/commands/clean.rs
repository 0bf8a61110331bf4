//! `envmod clean`: free the package cache and interrupted runs' leftovers, and say how much.

use anyhow::Result;

use crate::{
    env::clean::{self, Report},
    environ::Environ,
    escape::shown,
    printer::Printer,
    settings::CleanSettings,
};

pub(crate) fn run(s: CleanSettings, env: &Environ, printer: &Printer) -> Result<()> {
    let report = clean::clean(&s.plan);
    let mut dirs = s.plan.caches.clone();
    dirs.push(s.plan.envs_dir.clone());
    let quota = clean::quota_left(&dirs, env.get("PATH"));
    // The first goes into the error the run ends with.
    for skipped in report.skipped.iter().skip(1) {
        printer.warn(format!(
            "{} was not cleaned: {}",
            shown(&skipped.path.to_string_lossy()),
            shown(&skipped.reason)
        ));
    }
    for kept in &report.kept {
        printer.detail(format!(
            "kept {}: {}",
            shown(&kept.path.to_string_lossy()),
            shown(&kept.reason)
        ));
    }
    if s.json {
        #[derive(serde::Serialize)]
        struct Left<'a> {
            holder: &'a str,
            mount: &'a std::path::Path,
            bytes_left: u64,
        }
        #[derive(serde::Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            report: &'a Report,
            quota: Vec<Left<'a>>,
        }
        let quota = quota
            .iter()
            .map(|(holder, mount, kib)| Left {
                holder,
                mount,
                bytes_left: kib * 1024,
            })
            .collect();
        let out = Out {
            report: &report,
            quota,
        };
        printer.data(serde_json::to_string_pretty(&out)? + "\n");
    } else {
        printer.data(text(&report, &quota));
    }
    report.unfinished().map_or(Ok(()), Err)
}

/// The report for people: a line per removal, what stayed, the total, and the quota left.
fn text(report: &Report, quota: &[(String, std::path::PathBuf, u64)]) -> String {
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let mut out = String::new();
    for r in &report.removed {
        let what = match r.what {
            "leftover" => "leftover of an interrupted envmod ",
            "archive" => "unused package archive ",
            _ => "unused package ",
        };
        out.push_str(&format!(
            "{verb} {what}{} ({})\n",
            shown(&r.path.to_string_lossy()),
            size(r.bytes)
        ));
    }
    if !report.kept.is_empty() {
        let n = report.kept.len();
        out.push_str(&format!(
            "kept {n} {} still in use or not yours (envmod clean -v says why)\n",
            if n == 1 { "entry" } else { "entries" }
        ));
    }
    let files = |n: u64| format!("{n} file{}", if n == 1 { "" } else { "s" });
    out.push_str(&match (report.removed.is_empty(), report.dry_run) {
        (true, _) => "nothing to clean\n".to_string(),
        (false, true) => format!(
            "would free {} ({} bytes, {}); nothing was removed\n",
            size(report.bytes),
            report.bytes,
            files(report.files)
        ),
        (false, false) => format!(
            "freed {} ({} bytes, {})\n",
            size(report.bytes),
            report.bytes,
            files(report.files)
        ),
    });
    for (holder, mount, kib) in quota {
        out.push_str(&format!(
            "quota of {holder} on {}: {} left\n",
            shown(&mount.to_string_lossy()),
            size(kib * 1024)
        ));
    }
    out
}

/// `n` bytes in the largest unit that keeps it at 1 or more.
fn size(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(4096), "4.0 KiB");
        assert_eq!(size(3 << 30), "3.0 GiB");
    }
}
