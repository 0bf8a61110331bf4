//! Why a tree cannot be removed, said so that whoever reads it can act: who owns the
//! directories that keep it there, with their modes, and what to ask them to run. A group
//! member's directory that the group cannot write blocks every later change of a shared
//! environment, and "Permission denied" alone names neither the culprit nor the fix.

use crate::{
    escape::sh_quote,
    fs::tree::{Blocker, RemoveError},
};

/// Who keeps a tree from being removed, and how they can let it go: the problem and the fix,
/// one line each, e.g. `envmod-peer owns PATH (mode 2755)` and `ask envmod-peer to run
/// chmod -R g+rwX PATH, or to remove it`.
pub(crate) fn blocked_by(blockers: &[Blocker]) -> (String, String) {
    let user = |uid: u32| crate::fs::user_name(uid).unwrap_or_else(|| uid.to_string());
    let mut problem = blockers
        .iter()
        .take(3)
        .map(|b| {
            format!(
                "{} owns {} (mode {:04o})",
                user(b.owner),
                b.path.display(),
                b.mode
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    if blockers.len() > 3 {
        problem.push_str(&format!(" and {} more", blockers.len() - 3));
    }
    let mut owners: Vec<u32> = Vec::new();
    for b in blockers {
        if !owners.contains(&b.owner) {
            owners.push(b.owner);
        }
    }
    let fix = owners
        .iter()
        .map(|&uid| {
            let theirs: Vec<&Blocker> = blockers.iter().filter(|b| b.owner == uid).collect();
            let paths = theirs
                .iter()
                .map(|b| sh_quote(&b.path.to_string_lossy()))
                .collect::<Vec<_>>()
                .join(" ");
            let it = if theirs.len() == 1 { "it" } else { "them" };
            // A directory outside every group this user is in: group write alone is not enough.
            let regroup = theirs
                .iter()
                .find(|b| !crate::fs::in_group(b.group) && crate::fs::in_group(b.parent_group))
                .and_then(|b| {
                    nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(b.parent_group))
                        .ok()
                        .flatten()
                })
                .map(|g| format!("chgrp -R {} {paths} && ", g.name));
            format!(
                "ask {} to run {}chmod -R g+rwX {paths}, or to remove {it}",
                user(uid),
                regroup.unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    (problem, fix)
}

/// [`blocked_by`] for a removal that failed, whatever the reason.
pub(crate) fn explain(err: &RemoveError) -> (String, String) {
    if err.blockers.is_empty() {
        return (
            err.to_string(),
            format!(
                "check the permissions below {}, then remove it",
                err.path.display()
            ),
        );
    }
    blocked_by(&err.blockers)
}
