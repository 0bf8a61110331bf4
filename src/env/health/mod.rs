//! The first-day breakages of a user's set-up, each found with its fix: shell start-up files
//! that run `conda init`, variables that override every environment, packages in the user
//! site that shadow an environment's, full disks and quotas, environments whose site Python
//! or modules the site has since changed, and what an interrupted envmod left behind.
//! `envmod doctor` prints them; nothing here changes anything.

mod scan;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use serde::Serialize;

use crate::{
    conda::disk,
    env::registry::Registry,
    environ::Environ,
    escape::sh_quote,
    manifest::{Manifest, PythonMode},
    outputs::modulefile::{Owner, owner_of},
    site::{modules, quota, run},
};

use scan::{bundle_leftovers, dist_names, env_package_names, modulefiles};

/// Where to look.
pub(crate) struct Checkup {
    pub(crate) envs_dir: PathBuf,
    pub(crate) pkgs_dirs: Vec<PathBuf>,
    pub(crate) readonly_pkgs_dirs: Vec<PathBuf>,
    pub(crate) module_root: PathBuf,
    pub(crate) registry: Registry,
}

#[derive(Debug, Serialize)]
pub(crate) struct Finding {
    pub(crate) check: &'static str,
    pub(crate) problem: String,
    pub(crate) fix: String,
}

const CONDA_BLOCK: &str = "# >>> conda initialize >>>";
/// How much of a shell start-up file doctor reads: `conda init` writes its block near the
/// top, and a start-up file of gigabytes must not cost gigabytes.
const SCAN: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// A quota used to this percentage or more is reported: the next environment will not fit.
const QUOTA_PERCENT: u64 = 90;

/// Who set `var` in this shell: the loaded modules whose modulefiles set it, and the
/// user's start-up files that mention it (as `show` names them).
fn who_sets(
    env: &Environ,
    var: &str,
    show: &dyn Fn(&Path) -> String,
) -> (Vec<String>, Vec<String>) {
    let modules = crate::site::modules::loaded_mentioning(env, var);
    let rc_files = env
        .home()
        .iter()
        .flat_map(|h| [".bashrc", ".bash_profile", ".zshrc"].map(|rc| h.join(rc)))
        .filter(|path| {
            crate::fs::read_head(path, SCAN, crate::fs::Links::Follow)
                .is_ok_and(|t| String::from_utf8_lossy(&t).contains(var))
        })
        .map(|path| show(&path))
        .collect();
    (modules, rc_files)
}

/// ` by module X` / ` by modules X, Y`, or nothing.
fn by_modules(modules: &[String]) -> String {
    match modules {
        [] => String::new(),
        [one] => format!(" by module {one}"),
        many => format!(" by modules {}", many.join(", ")),
    }
}

/// Every finding for this user, in a stable order.
pub(crate) fn examine(s: &Checkup, env: &Environ) -> Vec<Finding> {
    let mut found = Vec::new();
    let home = env.home();
    let show = |p: &Path| match &home {
        Some(h) => p.strip_prefix(h).map_or_else(
            |_| p.display().to_string(),
            |r| format!("~/{}", r.display()),
        ),
        None => p.display().to_string(),
    };

    // Shell start-up files that activate conda behind the module system's back.
    if let Some(h) = &home {
        for rc in [".bashrc", ".bash_profile", ".zshrc"] {
            let path = h.join(rc);
            if crate::fs::read_head(&path, SCAN, crate::fs::Links::Follow)
                .is_ok_and(|t| String::from_utf8_lossy(&t).contains(CONDA_BLOCK))
            {
                found.push(Finding {
                    check: "conda-init",
                    problem: format!("{} has a `conda initialize` block, which puts conda's Python first on PATH in every shell", show(&path)),
                    fix: format!("delete the lines from `# >>> conda initialize >>>` to `# <<< conda initialize <<<` in {} (or run `conda init --reverse`), then open a new shell", show(&path)),
                });
            }
        }
    }
    if let Some(pp) = env.get("PYTHONPATH") {
        // Who set it: a loaded module (a site's py-mpi4py does, on purpose), or a start-up
        // file; only one that does is named.
        let (modules, rc_files) = who_sets(env, "PYTHONPATH", &show);
        let mut fixes = Vec::new();
        if !modules.is_empty() {
            fixes.push(format!(
                "`module unload {}` where its packages should not come first",
                modules.join(" ")
            ));
        }
        if !rc_files.is_empty() {
            fixes.push(format!(
                "remove the line that sets it from {}",
                rc_files.join(" and ")
            ));
        }
        if fixes.is_empty() {
            fixes.push("unset PYTHONPATH".to_owned());
        }
        found.push(Finding {
            check: "pythonpath",
            problem: format!("PYTHONPATH is set{} ({pp}), so every Python, in every environment, imports from there first", by_modules(&modules)),
            fix: fixes.join("; "),
        });
    }
    if let Some(lp) = env.get("LD_LIBRARY_PATH") {
        // The site's modules set it for their libraries, as they should; a start-up file
        // that sets it puts its libraries before every environment's, in every shell.
        let (modules, rc_files) = who_sets(env, "LD_LIBRARY_PATH", &show);
        if !rc_files.is_empty() {
            found.push(Finding {
                check: "ld-library-path",
                problem: format!(
                    "LD_LIBRARY_PATH is set in {}{} ({lp}), so programs in every environment load libraries from there before their own",
                    rc_files.join(" and "),
                    if modules.is_empty() { String::new() } else { format!(" as well as{}", by_modules(&modules)) }
                ),
                fix: format!(
                    "remove the line that sets it from {}; load the modules that need it instead",
                    rc_files.join(" and ")
                ),
            });
        }
    }
    for (var, what) in [
        ("CONDA_PREFIX", "conda environment"),
        ("VIRTUAL_ENV", "virtual environment"),
    ] {
        if let Some(p) = env.get(var).filter(|p| !Path::new(p).exists()) {
            found.push(Finding {
                check: "stale-activation",
                problem: format!("{var} points at {p}, a {what} that no longer exists"),
                fix: format!(
                    "unset {var} (run `deactivate` or `conda deactivate`), or open a new shell"
                ),
            });
        }
    }
    let module_system = env.get("LMOD_CMD").is_some() || env.get("MODULES_CMD").is_some();
    if !module_system {
        found.push(Finding {
            check: "module-system",
            problem: "no module system in this shell (neither Lmod nor Environment Modules)".into(),
            fix: "on a cluster, log in again or `source /etc/profile`; elsewhere use an environment with `. PREFIX/bin/activate`".into(),
        });
    }

    // Package caches that someone else could have put packages in: install refuses them.
    for (problem, fix) in crate::conda::cache::layer_problems(&s.pkgs_dirs, &s.readonly_pkgs_dirs) {
        found.push(Finding {
            check: "package-cache",
            problem,
            fix,
        });
    }

    // Disk space and quotas where environments and packages go.
    let mut dirs = vec![s.envs_dir.clone()];
    dirs.extend(s.pkgs_dirs.iter().cloned());
    for dir in &dirs {
        if let Some((free, total)) = disk::space(dir)
            && (free < GIB || free.saturating_mul(20) < total)
        {
            found.push(Finding {
                check: "disk",
                problem: format!(
                    "{} has {:.1} GiB free of {:.1} GiB",
                    show(dir),
                    free as f64 / GIB as f64,
                    total as f64 / GIB as f64
                ),
                fix: "free space there, or point envs_dir / pkgs_dirs at project storage in ~/.config/envmod/config.yaml".into(),
            });
        }
    }
    let mounts: BTreeMap<PathBuf, &PathBuf> = dirs
        .iter()
        .rev()
        .filter_map(|d| Some((disk::mount_point_of(d)?, d)))
        .collect();
    let mount_list: Vec<PathBuf> = mounts.keys().cloned().collect();
    for u in quota::usage(&mount_list, env.get("PATH")).unwrap_or_default() {
        let Some(dir) = mounts
            .get(&u.mount)
            .filter(|_| u.percent() >= QUOTA_PERCENT)
        else {
            continue;
        };
        let amount = |n: u64| match u.resource {
            quota::Resource::Space => kib(n),
            quota::Resource::Files => format!("{n} files"),
        };
        found.push(Finding {
            check: "quota",
            problem: format!(
                "the quota of {} on {} is {}% used ({} of {}), and {} is there",
                u.holder,
                u.mount.display(),
                u.percent(),
                amount(u.used),
                amount(u.limit),
                show(dir)
            ),
            fix: match u.resource {
                quota::Resource::Space => "delete environments you no longer need (`envmod list`, `envmod delete`) or other files there, or point envs_dir / pkgs_dirs at project storage in ~/.config/envmod/config.yaml".into(),
                quota::Resource::Files => "delete environments you no longer need (`envmod list`, `envmod delete`), or point envs_dir / pkgs_dirs at storage with a larger file quota in ~/.config/envmod/config.yaml; an environment is tens of thousands of files".into(),
            },
        });
    }

    // Each environment: its Python, its modules, the user packages that shadow it.
    let envs: Vec<Manifest> = s.registry.all(&s.envs_dir).into_iter().flatten().collect();
    // Environments share a few site Pythons and modules: ask about each one once.
    let mut versions: BTreeMap<(PathBuf, String), Result<Option<String>, String>> = BTreeMap::new();
    let mut stacks: BTreeMap<Vec<String>, Result<Option<modules::Replay>, String>> =
        BTreeMap::new();
    for m in &envs {
        let target = m.cli_target();
        if m.python.mode == PythonMode::Site {
            let exe = &m.python.site.executable;
            let version = versions
                .entry((exe.clone(), m.python.site.version.clone()))
                .or_insert_with(|| python_version(exe, &m.python.site.version));
            match version.as_ref().map(Option::as_deref) {
                Err(hung) => found.push(Finding {
                    check: "site-python",
                    problem: format!("{}: its site Python {hung}", m.name),
                    fix: format!("check that {} starts (`{} -c pass`); if the site replaced it, create the environment again: `envmod export {target} -o env.yml`, `envmod delete {target} --yes`, `envmod create -f env.yml`", exe.display(), sh_quote(&exe.to_string_lossy())),
                }),
                Ok(None) => found.push(Finding {
                    check: "site-python",
                    problem: format!("{}: its site Python {} is gone", m.name, exe.display()),
                    fix: format!("create it again on the site's current Python: `envmod export {target} -o env.yml`, `envmod delete {target} --yes`, `envmod create -f env.yml`"),
                }),
                Ok(Some(v)) if v != m.python.site.version.as_str() => found.push(Finding {
                    check: "site-python",
                    problem: format!("{}: its site Python {} is now {v}, not {}", m.name, exe.display(), m.python.site.version),
                    fix: format!("create it again: `envmod export {target} -o env.yml`, `envmod delete {target} --yes`, `envmod create -f env.yml`"),
                }),
                Ok(Some(_)) => {}
            }
        }
        // Only the modules this user recorded are loaded (they run as this user).
        let asked = match (module_system && !m.modules.is_empty())
            .then(|| crate::env::stack::to_check(env, m, &target))
        {
            Some(Err(e)) => {
                let fix = crate::error::hint_of(&e).unwrap_or_default().to_owned();
                found.push(Finding {
                    check: "modules",
                    problem: format!("{}: {e}", m.name),
                    fix,
                });
                None
            }
            checked => checked.and_then(Result::ok),
        };
        if let Some(asked) = asked {
            // Loaded from scratch, as `module load ENV` in a new shell does; environments
            // share a few stacks, and each is loaded once.
            let replay = stacks
                .entry(asked.clone())
                .or_insert_with(|| modules::replay(env, &asked).map_err(|e| format!("{e:#}")));
            match replay {
                Err(e) => found.push(Finding {
                    check: "modules",
                    problem: format!("{}: its modules could not be loaded to check them: {e}", m.name),
                    fix: "check that `module avail` answers in this shell".into(),
                }),
                Ok(None) => {}
                Ok(Some(r)) if !r.failed.is_empty() => {
                    let failed: Vec<String> =
                        r.failed.iter().map(|(name, why)| format!("{name} ({why})")).collect();
                    found.push(Finding {
                        check: "modules",
                        problem: format!(
                            "{}: its modules do not load in a new shell: {}",
                            m.name,
                            failed.join(", ")
                        ),
                        fix: format!("if the site renamed or removed them, rebuild it with a module_map: `envmod export {target} -o env.yml`, then `envmod create -f env.yml --module-map MAP` (a `{}: <module here>` line each)", r.failed[0].0),
                    });
                }
                Ok(Some(r)) if !r.in_order(&asked) => found.push(Finding {
                    check: "modules",
                    problem: format!(
                        "{}: its modules load in a new shell only in another order, {}, so `module load {}` fails",
                        m.name,
                        r.order.join(" "),
                        m.module_name()
                    ),
                    fix: format!("create it again, which records the order that loads: `envmod export {target} -o env.yml`, `envmod delete {target} --yes`, `envmod create -f env.yml`"),
                }),
                Ok(Some(_)) => {}
            }
        }
        if let Some(h) = &home {
            let user_site = h.join(format!(
                ".local/lib/python{}/site-packages",
                m.python.site.short_version()
            ));
            let shadowing: Vec<String> = dist_names(&user_site)
                .intersection(&env_package_names(&m.prefix))
                .cloned()
                .collect();
            if !shadowing.is_empty() {
                found.push(Finding {
                    check: "user-site",
                    problem: format!("{} has {} that {} also has; plain `python3` and `pip --user` see those copies first", show(&user_site), shadowing.join(" "), m.name),
                    fix: format!("pip uninstall --user {} (envmod's modules already ignore ~/.local)", shadowing.join(" ")),
                });
            }
        }
    }

    // Modulefiles whose environment is gone.
    let roots: BTreeSet<PathBuf> = std::iter::once(s.module_root.clone())
        .chain(
            envs.iter()
                .filter_map(|m| m.module.as_ref().map(|i| i.root.clone())),
        )
        .collect();
    for root in roots {
        for file in modulefiles(&root) {
            if let Owner::Env(prefix) = owner_of(&file)
                && !Manifest::path_in(&prefix).exists()
            {
                found.push(Finding {
                    check: "orphan-modulefile",
                    problem: format!(
                        "{} belongs to {}, which no longer exists",
                        show(&file),
                        prefix.display()
                    ),
                    fix: format!("rm {}", sh_quote(&file.to_string_lossy())),
                });
            }
        }
    }

    // What an interrupted envmod left beside the environments, and who keeps it there.
    for left in s
        .registry
        .dirs(&s.envs_dir)
        .iter()
        .flat_map(|d| crate::env::lock::leftovers_in(d))
    {
        let rm = format!("rm -rf {}", sh_quote(&left.path.to_string_lossy()));
        let blockers = crate::fs::tree::blockers(&left.path).unwrap_or_default();
        found.push(if blockers.is_empty() {
            Finding {
                check: "leftover",
                problem: format!("{} was left by an interrupted envmod", show(&left.path)),
                fix: format!(
                    "{rm} (the next envmod command on {} also removes it)",
                    left.env
                ),
            }
        } else {
            let (problem, fix) = crate::fs::blocked::blocked_by(&blockers);
            Finding {
                check: "leftover",
                problem: format!(
                    "{} was left by an interrupted envmod and cannot be removed: {problem}",
                    show(&left.path)
                ),
                fix: format!("{fix}; then {rm}"),
            }
        });
    }
    found.extend(bundle_leftovers(&s.envs_dir, &show));
    found
}

/// `n` KiB in the largest unit that keeps it at 1 or more.
fn kib(n: u64) -> String {
    match n {
        0..1024 => format!("{n} KiB"),
        1024..1_048_576 => format!("{:.1} MiB", n as f64 / 1024.0),
        _ => format!("{:.1} GiB", n as f64 / 1_048_576.0),
    }
}

/// The version a Python reports: `Ok(None)` when it does not run, `Err` with the reason
/// when it does not answer in time. The manifest that names it may be a group's to edit,
/// so an interpreter someone other than this user and root could have put there is not
/// started: it only has to exist, and its version is taken as the manifest says.
fn python_version(exe: &Path, recorded: &str) -> Result<Option<String>, String> {
    if crate::fs::trust::program(exe).is_err() {
        return Ok(exe.is_file().then(|| recorded.to_string()));
    }
    let out = run::output(
        std::process::Command::new(exe).args([
            "-I",
            "-S",
            "-c",
            "import platform; print(platform.python_version())",
        ]),
        run::SITE_PYTHON,
    );
    match out {
        Ok(out) => Ok(out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())),
        Err(e) if e.timed_out() => Err(e.to_string()),
        Err(_) => Ok(None),
    }
}
