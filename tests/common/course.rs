//! A course set up the way docs/instructors.md recommends, with three real accounts: the
//! instructor (`envmod-instructor`, in the course group), a TA (`envmod-peer`, in the group)
//! and a student (`envmod-other`, outside it). The course directory is group-owned and
//! setgid; every account has its own private HOME and runs the same copy of the binary.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Output,
};

use super::{GROUP, OTHER, PEER, TestEnv, bash_as, channel, require_account, run_ok, sh};

/// The instructor of the course: owns the course environments, in the group.
pub const INSTRUCTOR: &str = "envmod-instructor";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Instructor,
    Ta,
    Student,
}

impl Who {
    pub fn user(self) -> &'static str {
        match self {
            Who::Instructor => INSTRUCTOR,
            Who::Ta => PEER,
            Who::Student => OTHER,
        }
    }
}

pub struct Course {
    pub t: TestEnv,
    /// `<test dir>/course`: `envs/` and `modules/` below it, group-owned, mode 2775.
    pub dir: PathBuf,
    /// The binary under test, readable and runnable by all three accounts.
    pub envmod: PathBuf,
}

impl Course {
    /// The course directory, the standard test channel readable by all, and a HOME for each
    /// account (mode 0700, owned by it).
    pub fn new() -> Self {
        for who in [Who::Instructor, Who::Ta, Who::Student] {
            require_account(who.user());
        }
        let t = TestEnv::new();
        let chan = channel::standard_channel(&t.path().join("channel"));
        t.set_site_config(&format!("channels: [{}]\n", chan.display()));
        let dir = t.path().join("course");
        for d in [dir.join("envs"), dir.join("modules")] {
            std::fs::create_dir_all(&d).unwrap();
        }
        run_ok("chgrp", &[Path::new("-R"), Path::new(GROUP), &dir]);
        run_ok("chmod", &[Path::new("-R"), Path::new("2775"), &dir]);
        run_ok("chmod", &[Path::new("-R"), Path::new("a+rX"), &chan]);
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&t.site_config, std::fs::Permissions::from_mode(0o644)).unwrap();
        let bin = t.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let envmod = bin.join("envmod");
        std::fs::copy(assert_cmd::cargo::cargo_bin("envmod"), &envmod).unwrap();
        std::fs::set_permissions(&envmod, std::fs::Permissions::from_mode(0o755)).unwrap();
        let c = Self { t, dir, envmod };
        for who in [Who::Instructor, Who::Ta, Who::Student] {
            let home = c.home(who);
            std::fs::create_dir_all(&home).unwrap();
            run_ok("chown", &[Path::new(who.user()), &home]);
            std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        c
    }

    pub fn path(&self) -> &Path {
        self.t.path()
    }

    pub fn home(&self, who: Who) -> PathBuf {
        self.t.path().join(format!("home-{}", who.user()))
    }

    pub fn envs(&self) -> PathBuf {
        self.dir.join("envs")
    }

    pub fn modules(&self) -> PathBuf {
        self.dir.join("modules")
    }

    /// The variables `who` runs envmod with: its own HOME and XDG dirs, the shared site config.
    pub fn vars(&self, who: Who) -> Vec<(String, String)> {
        let home = self.home(who);
        vec![
            ("HOME".into(), home.display().to_string()),
            ("USER".into(), who.user().into()),
            (
                "ENVMOD_SITE_CONFIG".into(),
                self.t.site_config.display().to_string(),
            ),
            (
                "XDG_CONFIG_HOME".into(),
                home.join(".config").display().to_string(),
            ),
            (
                "XDG_DATA_HOME".into(),
                home.join(".local/share").display().to_string(),
            ),
            (
                "XDG_CACHE_HOME".into(),
                home.join(".cache").display().to_string(),
            ),
        ]
    }

    /// Run a bash script as `who`; `$ENVMOD` in it is the binary under test.
    pub fn bash(&self, who: Who, script: &str) -> Output {
        let mut vars = self.vars(who);
        vars.push(("ENVMOD".into(), self.envmod.display().to_string()));
        bash_as(Some(who.user()), script, &vars, self.path())
    }

    /// `envmod ARGS` as `who`, with umask `umask`.
    pub fn envmod_as(&self, who: Who, umask: &str, args: &[&str]) -> Output {
        let line = std::iter::once("\"$ENVMOD\"".to_string())
            .chain(args.iter().map(|a| sh(a)))
            .collect::<Vec<_>>()
            .join(" ");
        self.bash(who, &format!("umask {umask}\nexec {line}"))
    }

    /// The instructor's shared course environment `name` (a Lmod modulefile in the course's
    /// module root), created with umask 077, holding `pkgs`.
    pub fn create_shared(&self, name: &str, pkgs: &[&str]) -> PathBuf {
        let prefix = self.envs().join(name);
        let mut args = vec![
            "create".to_string(),
            "-p".into(),
            prefix.display().to_string(),
            "--module-root".into(),
            self.modules().display().to_string(),
            "--module-system".into(),
            "lmod".into(),
            "--shared".into(),
            "--group".into(),
            GROUP.into(),
        ];
        args.extend(pkgs.iter().map(|p| p.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        super::ok(&self.envmod_as(Who::Instructor, "077", &args));
        prefix
    }
}
