//! Course and shared environments: freezing an environment for a term.

use crate::common;

use std::path::Path;

use common::{TestEnv, ok, stderr};

#[test]
fn a_frozen_environment_refuses_install_remove_and_delete_until_unfrozen() {
    let t = TestEnv::with_channel();
    ok(&t.run(&["create", "-n", "term", "alpha"]));
    let out = t.run(&["freeze", "-n", "term"]);
    ok(&out);
    assert!(stderr(&out).contains("is frozen"), "{}", stderr(&out));

    for args in [
        vec!["install", "-n", "term", "libfoo"],
        vec!["remove", "-n", "term", "alpha"],
        vec!["delete", "-n", "term", "--yes"],
        vec!["delete", "-n", "term", "--yes", "--force"],
    ] {
        let out = t.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{err}");
        assert!(errors[0].contains("term is frozen"), "{err}");
        assert!(err.contains("envmod unfreeze -n term"), "{err}");
    }
    let prefix = t.envs_dir().join("term");
    assert!(prefix.join("lib/python3.11/site-packages/alpha").is_dir());
    assert!(!prefix.join("lib/libfoo.so.1").exists());

    let table = ok(&t.run(&["list"]));
    assert!(table.contains("- (frozen)"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&ok(&t.run(&["list", "--json"]))).unwrap();
    assert_eq!(json[0]["frozen"], true, "{json}");

    ok(&t.run(&["unfreeze", "-n", "term"]));
    ok(&t.run(&["install", "-n", "term", "libfoo"]));
    assert!(prefix.join("lib/libfoo.so.1").exists());
    let json: serde_json::Value = serde_json::from_str(&ok(&t.run(&["list", "--json"]))).unwrap();
    assert_eq!(json[0]["frozen"], false, "{json}");
    ok(&t.run(&["delete", "-n", "term", "--yes"]));
    assert!(!prefix.exists());
}

/// The `co_filename` of a compiled file, and the source it names, read back with Python.
const PYC_FILENAME: &str = r#"
import marshal, sys
with open(sys.argv[1], "rb") as f:
    f.read(16)
    print(marshal.load(f).co_filename)
"#;

fn pycache_files(dir: &std::path::Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir.join("__pycache__"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn create_compiles_pyc_valid_at_the_final_prefix_in_both_modes() {
    let t = TestEnv::with_channel();
    // A private environment is compiled only when asked (tests/it/pyc.rs has the default).
    ok(&t.run(&["create", "-n", "site", "--compile", "alpha"]));
    ok(&t.run(&[
        "create",
        "-n",
        "conda",
        "--compile",
        "--python",
        "3.12",
        "alpha",
    ]));
    ok(&t.run(&["create", "-n", "plain", "alpha", "--no-compile"]));
    for (name, site) in [
        ("site", "lib/python3.11/site-packages"),
        ("conda", "lib/python3.12/site-packages"),
    ] {
        let prefix = t.envs_dir().join(name);
        let pkg = prefix.join(site).join("alpha");
        let compiled = pycache_files(&pkg);
        assert!(
            compiled.contains(&"__init__.cpython-311.pyc".to_string()),
            "{name}: {compiled:?}"
        );
        // The code object names the environment, not the staging directory it was built in.
        let pyc = pkg.join("__pycache__/__init__.cpython-311.pyc");
        let named = ok(&std::process::Command::new(common::MODULE_PYTHON)
            .args(["-c", PYC_FILENAME])
            .arg(&pyc)
            .output()
            .unwrap());
        assert_eq!(named.trim(), pkg.join("__init__.py").display().to_string());
        // Importing uses it: nothing is written, and -X importtime shows the import.
        let before = std::fs::metadata(&pyc).unwrap().modified().unwrap();
        let out = std::process::Command::new(prefix.join("bin/python"))
            .args(["-X", "importtime", "-c", "import alpha"])
            .env_remove("PYTHONDONTWRITEBYTECODE")
            .output()
            .unwrap();
        ok(&out);
        assert!(stderr(&out).contains("| alpha"), "{}", stderr(&out));
        assert_eq!(
            pycache_files(&pkg),
            compiled,
            "{name}: the import wrote files"
        );
        assert_eq!(std::fs::metadata(&pyc).unwrap().modified().unwrap(), before);
    }
    // install compiles what it adds, in the staging clone, for the final prefix too.
    ok(&t.run(&["install", "-n", "site", "--compile", "gamma"]));
    let gamma = t.envs_dir().join("site/lib/python3.11/site-packages/gamma");
    let named = ok(&std::process::Command::new(common::MODULE_PYTHON)
        .args(["-c", PYC_FILENAME])
        .arg(gamma.join("__pycache__/__init__.cpython-311.pyc"))
        .output()
        .unwrap());
    assert_eq!(
        named.trim(),
        gamma.join("__init__.py").display().to_string()
    );
    let plain = t
        .envs_dir()
        .join("plain/lib/python3.11/site-packages/alpha");
    assert!(pycache_files(&plain).is_empty(), "--no-compile compiled");
}

use std::os::unix::fs::MetadataExt;

use common::{GROUP, Ms, OTHER, PEER, bash_as, sh};

fn chown(path: &std::path::Path, owner: &str) {
    common::run_ok("chown", &[std::path::Path::new(owner), path]);
}

/// Every entry below `root` (symlinks aside): directories setgid and `dir_mode`, files
/// `file_mode` (ignoring execute bits), all owned by `gid`.
fn assert_modes(root: &std::path::Path, gid: u32, dir_mode: u32, file_mode: u32) {
    let meta = root.symlink_metadata().unwrap();
    if meta.file_type().is_symlink() {
        return;
    }
    assert_eq!(
        meta.gid(),
        gid,
        "{} has group {}",
        root.display(),
        meta.gid()
    );
    if meta.is_dir() {
        assert_eq!(meta.mode() & 0o7777, dir_mode, "{}", root.display());
        for e in std::fs::read_dir(root).unwrap() {
            assert_modes(&e.unwrap().path(), gid, dir_mode, file_mode);
        }
    } else {
        // Activation scripts stay writable by their owner alone, so that who could have
        // changed one shows in its owner.
        let script = root
            .parent()
            .is_some_and(|d| d.ends_with("etc/conda/activate.d"));
        let file_mode = if script {
            file_mode & !0o022
        } else {
            file_mode
        };
        assert_eq!(meta.mode() & 0o7666, file_mode, "{}", root.display());
    }
}

fn gid_of(group: &str) -> u32 {
    let out = std::process::Command::new("getent")
        .args(["group", group])
        .output()
        .unwrap();
    ok(&out).split(':').nth(2).unwrap().trim().parse().unwrap()
}

#[test]
fn a_shared_course_env_is_read_by_students_and_changed_by_the_group_whatever_the_umask() {
    common::require_account(PEER);
    common::require_account(OTHER);
    let t = TestEnv::with_channel();
    // The course directory: group-owned, setgid, as docs/instructors.md prepares it.
    let course = t.path().join("course");
    for d in [course.join("envs"), course.join("modules")] {
        std::fs::create_dir_all(&d).unwrap();
    }
    common::run_ok("chgrp", &[Path::new("-R"), Path::new(GROUP), &course]);
    common::run_ok("chmod", &[Path::new("-R"), Path::new("2775"), &course]);
    common::run_ok("chmod", &[Path::new("0755"), t.path()]);
    common::run_ok(
        "chmod",
        &[
            Path::new("-R"),
            Path::new("a+rX"),
            &t.path().join("channel"),
        ],
    );
    common::run_ok("chmod", &[Path::new("0644"), &t.site_config]);
    let prefix = course.join("envs/cs101");
    let envmod = assert_cmd::cargo::cargo_bin("envmod");
    let bin = t.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(&envmod, bin.join("envmod")).unwrap();
    let envmod = bin.join("envmod");
    let ta_home = t.path().join("ta-home");
    std::fs::create_dir_all(&ta_home).unwrap();
    chown(&ta_home, PEER);

    // The instructor, with umask 077.
    let create = format!(
        "umask 077\n{} create -p {} --module-root {} --module-system lmod --shared --group {GROUP} alpha",
        sh(&envmod.display().to_string()),
        sh(&prefix.display().to_string()),
        sh(&course.join("modules").display().to_string()),
    );
    ok(&bash_as(None, &create, &t.vars(), t.path()));
    let gid = gid_of(GROUP);
    assert_modes(&prefix, gid, 0o2775, 0o664);
    assert_modes(&course.join("modules/cs101"), gid, 0o2775, 0o664);
    let manifest = std::fs::read_to_string(prefix.join(".envmod/manifest.json")).unwrap();
    assert!(
        manifest.contains(&format!("\"group\": \"{GROUP}\"")),
        "{manifest}"
    );

    // A student (not in the group) loads it, imports, and cannot write anywhere in it.
    let student = |ms: Ms| {
        let script = format!(
            "source {init}\nmodule use {mods}\nmodule load cs101/py3.11 || exit 9\npython -c 'import alpha; print(\"imported\", alpha.VERSION)'\npython -v -c 'import alpha' 2>&1 | grep -q 'code object from .*alpha/__pycache__/__init__.cpython-311.pyc' && echo CACHED\nfor d in {p} {p}/bin {p}/lib/python3.11/site-packages/alpha {p}/.envmod {mods}/cs101; do touch \"$d/student-was-here\" 2>/dev/null && echo \"WROTE $d\"; done\nfor f in {p}/.envmod/manifest.json {p}/bin/activate; do [ -w \"$f\" ] && echo \"WRITABLE $f\"; done\ntrue",
            init = sh(&ms.init_script().display().to_string()),
            mods = sh(&course.join("modules").display().to_string()),
            p = sh(&prefix.display().to_string()),
        );
        let out = bash_as(Some(OTHER), &script, &[], t.path());
        let text = ok(&out);
        assert!(text.contains("imported 2.0"), "{ms:?}: {text}");
        // The import came from the .pyc compiled at create, not from a fresh compile.
        assert!(text.contains("CACHED"), "{ms:?}: {text}");
        assert!(
            !text.contains("WROTE") && !text.contains("WRITABLE"),
            "{ms:?}: {text}"
        );
    };
    student(Ms::Lmod);

    // A TA (in the group) installs; the instructor sees the same environment, modes intact.
    let ta_vars = vec![
        ("HOME".to_string(), ta_home.display().to_string()),
        (
            "ENVMOD_SITE_CONFIG".to_string(),
            t.site_config.display().to_string(),
        ),
    ];
    let install = format!(
        "umask 077\n{} install -p {} libfoo",
        sh(&envmod.display().to_string()),
        sh(&prefix.display().to_string())
    );
    ok(&bash_as(Some(PEER), &install, &ta_vars, t.path()));
    let list = ok(&t.run(&["list", "--json"]));
    assert!(list.contains("libfoo"), "{list}");
    assert_modes(&prefix, gid, 0o2775, 0o664);
    student(Ms::Lmod);

    // The site catalogue: a student's `envmod list` shows the course environment, and what
    // it prints loads it.
    std::fs::write(
        &t.site_config,
        format!(
            "channels: [{}]\nshared_envs_dirs: [{}]\n",
            t.path().join("channel").display(),
            course.join("envs").display()
        ),
    )
    .unwrap();
    let student_home = t.path().join("student-home");
    std::fs::create_dir_all(&student_home).unwrap();
    chown(&student_home, OTHER);
    let student_vars = vec![
        ("HOME".to_string(), student_home.display().to_string()),
        (
            "ENVMOD_SITE_CONFIG".to_string(),
            t.site_config.display().to_string(),
        ),
    ];
    let listed = ok(&bash_as(
        Some(OTHER),
        &format!("{} list", sh(&envmod.display().to_string())),
        &student_vars,
        t.path(),
    ));
    // The owner of the directory, not who the manifest (the group's to edit) names: the
    // tree is the TA's since the TA's install swapped in a new one.
    assert!(
        listed.contains(&format!("cs101/py3.11 (shared by {PEER})")),
        "{listed}"
    );
    let use_line = listed
        .lines()
        .find(|l| l.trim_start().starts_with("module use "))
        .unwrap_or_else(|| panic!("no module use line in:\n{listed}"))
        .trim()
        .to_string();
    let json = ok(&bash_as(
        Some(OTHER),
        &format!("{} list --json", sh(&envmod.display().to_string())),
        &student_vars,
        t.path(),
    ));
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    let row = &rows[0];
    assert_eq!(row["shared"], true, "{json}");
    assert_eq!(row["owner"], PEER, "{json}");
    assert_eq!(row["module"], "cs101/py3.11", "{json}");
    assert_eq!(
        row["module_root"],
        course.join("modules").display().to_string(),
        "{json}"
    );
    let from_list = format!(
        "source {init}\n{use_line}\nmodule load cs101/py3.11 || exit 9\npython -c 'import alpha; print(\"imported\", alpha.VERSION)'",
        init = sh(&Ms::Lmod.init_script().display().to_string()),
    );
    let text = ok(&bash_as(Some(OTHER), &from_list, &student_vars, t.path()));
    assert!(text.contains("imported 2.0"), "{text}");

    // A kernel for the class, in the course's Jupyter prefix, gets the same modes.
    let wheels = common::wheelhouse();
    let kernel = format!(
        "{py} -m pip install -q --no-input --no-index --find-links {wh} ipykernel && umask 077 && {envmod} kernel add -p {p} --prefix {jup}",
        py = sh(&prefix.join("bin/python").display().to_string()),
        wh = sh(&wheels.display().to_string()),
        envmod = sh(&envmod.display().to_string()),
        p = sh(&prefix.display().to_string()),
        jup = sh(&course.display().to_string()),
    );
    ok(&bash_as(None, &kernel, &t.vars(), t.path()));
    let kernel_dir = course.join("share/jupyter/kernels/cs101");
    assert_modes(&kernel_dir, gid, 0o2775, 0o664);
    let touch = format!(
        "touch {}/x 2>/dev/null && echo WROTE; [ -w {}/kernel.json ] && echo WRITABLE; cat {}/kernel.json >/dev/null && echo READ",
        sh(&kernel_dir.display().to_string()),
        sh(&kernel_dir.display().to_string()),
        sh(&kernel_dir.display().to_string()),
    );
    let text = ok(&bash_as(Some(OTHER), &touch, &[], t.path()));
    assert_eq!(text, "READ\n", "{text}");

    // The instructor moves it to a Tcl modulefile: the new file is shared too.
    let tcl = format!(
        "umask 077\n{} module -p {} --module-system tcl",
        sh(&envmod.display().to_string()),
        sh(&prefix.display().to_string())
    );
    ok(&bash_as(None, &tcl, &t.vars(), t.path()));
    assert_modes(&course.join("modules/cs101"), gid, 0o2775, 0o664);
    student(Ms::Tcl);
}

#[test]
fn doctor_finds_each_first_day_breakage_and_passes_a_clean_account() {
    // A clean account: one environment, a module system, nothing odd.
    let t = TestEnv::with_channel();
    ok(&t.module_shell(Ms::Lmod, "module load gcc/12.2\nenvmod create -n ok alpha"));
    let out = t.module_shell(Ms::Lmod, "envmod doctor");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        common::stdout(&out),
        stderr(&out)
    );
    assert!(common::stdout(&out).contains("no problems found"));

    // Every finding, from a real fixture.
    // A site Python that the site later removes: a copy of the interpreter, then gone.
    let site_python = t.path().join("apps/python/bin/python3.11");
    std::fs::create_dir_all(site_python.parent().unwrap()).unwrap();
    std::fs::copy(common::MODULE_PYTHON, &site_python).unwrap();
    ok(&t.module_shell(
        Ms::Lmod,
        &format!(
            "envmod create -n oldpy --site-python {} alpha",
            sh(&site_python.display().to_string())
        ),
    ));
    std::fs::remove_file(&site_python).unwrap();
    ok(&t.module_shell(Ms::Lmod, "envmod create -n gone"));
    std::fs::remove_dir_all(t.envs_dir().join("gone")).unwrap();
    std::fs::create_dir_all(t.envs_dir().join(".half.envmod-staging")).unwrap();
    std::fs::remove_file(t.site_modules.join("gcc/12.2")).unwrap();
    std::fs::write(
        t.home.join(".bashrc"),
        "# >>> conda initialize >>>\n__conda_setup=\"$('/opt/conda/bin/conda' 'shell.bash' 'hook')\"\n# <<< conda initialize <<<\n",
    )
    .unwrap();
    let user_site = t
        .home
        .join(".local/lib/python3.11/site-packages/alpha-9.0.dist-info");
    std::fs::create_dir_all(&user_site).unwrap();
    let out = t.module_shell_with(
        Ms::Lmod,
        "envmod doctor --json",
        &[
            ("PYTHONPATH", "/old/lib"),
            ("CONDA_PREFIX", "/nonexistent/conda"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let findings: serde_json::Value = serde_json::from_str(&common::stdout(&out)).unwrap();
    let checks: Vec<&str> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    for check in [
        "conda-init",
        "pythonpath",
        "stale-activation",
        "site-python",
        "modules",
        "user-site",
        "orphan-modulefile",
        "leftover",
    ] {
        assert!(checks.contains(&check), "{check} not found: {findings:#}");
    }
    for f in findings.as_array().unwrap() {
        assert!(!f["fix"].as_str().unwrap().is_empty(), "{f}");
    }
    // One line per finding, each with its fix; and no module system is one more.
    let out = t.run(&["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    let text = common::stdout(&out);
    assert!(
        text.lines()
            .all(|l| l.starts_with("problem: ") && l.contains("; fix: ")),
        "{text}"
    );
    assert!(text.contains("no module system"), "{text}");
}

/// The quota check needs a filesystem with disk quotas, and this machine's kernel is built
/// without them. tests/vm/run.sh boots Debian's kernel on this machine's files, where an ext4
/// image is mounted with user and group quotas; the student fills it past 90% of each.
/// The binary goes in by name: the VM's /tmp and /run are fresh, and a checkout in /tmp is
/// common.
#[test]
fn doctor_reports_a_quota_over_ninety_percent_on_a_real_quota_filesystem() {
    common::require_account(OTHER);
    let envmod = assert_cmd::cargo::cargo_bin("envmod");
    let t = tempfile::tempdir().unwrap();
    let script = t.path().join("quota.sh");
    std::fs::write(
        &script,
        format!(
            r#"set -eu
u={OTHER}
truncate -s 64M /tmp/q.img
mkfs.ext4 -q -O quota -E quotatype=usrquota:grpquota /tmp/q.img
mkdir /tmp/q
mount -o loop,usrquota,grpquota /tmp/q.img /tmp/q
home=/tmp/q/home
mkdir "$home"
chown "$u:" "$home"
: > /tmp/site.yaml
# The binary as the VM shows it, run by the student (doctor's own errors go to /dev/null).
runuser -u "$u" -- /run/envmod-vm/envmod --version
# 1000 KiB of space for the user, 20 files for the user's group (soft limits).
setquota -u "$u" 1000 1100 0 0 /tmp/q
setquota -g "$u" 0 0 20 30 /tmp/q
doctor() {{
    echo "== doctor $1"
    runuser -u "$u" -- env -i PATH=/usr/bin:/bin HOME="$home" ENVMOD_SITE_CONFIG=/tmp/site.yaml \
        /run/envmod-vm/envmod doctor --json 2>/dev/null || true
}}
doctor before
runuser -u "$u" -- dd if=/dev/zero of="$home/fill" bs=1K count=950 status=none
runuser -u "$u" -- sh -c 'for i in $(seq 17); do : > "$1/f$i"; done' sh "$home"
doctor after
echo "== quota"
runuser -u "$u" -- quota -u -g -w -f /tmp/q || true
"#
        ),
    )
    .unwrap();
    let out = std::process::Command::new("bash")
        .arg(Path::new(common::REPO).join("tests/vm/run.sh"))
        .arg(&script)
        .arg(&envmod)
        .output()
        .unwrap();
    let text = common::stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    let section = |name: &str| -> serde_json::Value {
        let start = text.find(&format!("== doctor {name}\n")).expect(&text) + 11 + name.len();
        let end = text[start..].find("\n==").map_or(text.len(), |e| start + e);
        serde_json::from_str(&text[start..end]).unwrap_or_else(|e| panic!("{e}: {text}"))
    };
    let quota_findings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .filter(|f| f["check"] == "quota")
            .map(|f| format!("{} | {}", f["problem"], f["fix"]))
            .collect()
    };
    assert_eq!(
        quota_findings(&section("before")),
        Vec::<String>::new(),
        "{text}"
    );
    let after = quota_findings(&section("after"));
    assert_eq!(after.len(), 2, "{text}");
    assert!(
        after[0].contains("the quota of user envmod-other on /tmp/q is 95% used (")
            && after[0].contains(" KiB of 1000 KiB), and ~/.envmod/envs is there")
            && after[0].contains("envmod delete"),
        "{after:#?}"
    );
    assert!(
        after[1].contains(
            "the quota of group envmod-other on /tmp/q is 95% used (19 files of 20 files)"
        ) && after[1].contains("file quota"),
        "{after:#?}"
    );
}
