//! Shared test harness: an isolated HOME per test, fake site modules that both module
//! systems load, real Lmod and Environment Modules shells, and a wheel builder.
#![allow(dead_code)]

pub mod channel;
pub mod course;
pub mod hierarchy;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use assert_cmd::cargo::CommandCargoExt;

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The Python that the fake `python/3.11` module puts on PATH: Debian's, which differs from
/// the `python3` first on the default PATH, so tests can tell which one an env sits on.
pub const MODULE_PYTHON: &str = "/usr/bin/python3.11";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ms {
    Lmod,
    Tcl,
}

impl Ms {
    pub const BOTH: [Ms; 2] = [Ms::Lmod, Ms::Tcl];

    pub fn flag(self) -> &'static str {
        match self {
            Ms::Lmod => "lmod",
            Ms::Tcl => "tcl",
        }
    }

    /// The init script of the real module system, provisioned by tests/provision.sh.
    pub fn init_script(self) -> PathBuf {
        let (var, what) = match self {
            Ms::Lmod => ("ENVMOD_TEST_LMOD_INIT", "Lmod"),
            Ms::Tcl => ("ENVMOD_TEST_MODULES_INIT", "Environment Modules"),
        };
        let path = std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| read_tools_env(var))
            .unwrap_or_default();
        assert!(
            path.is_file(),
            "{what} is not installed for the tests ({var} = {path:?}): run `bash tests/provision.sh` (as root), or `tests/run`"
        );
        path
    }
}

/// The tools dir tests/provision.sh and tests/peers.sh fill: `$ENVMOD_TEST_TOOLS`, or
/// `<repo>/.test-tools`.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("ENVMOD_TEST_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(REPO).join(".test-tools"))
}

fn read_tools_env(var: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string(tools_dir().join("env.sh")).ok()?;
    text.lines().find_map(|l| {
        let rest = l
            .trim()
            .strip_prefix("export ")?
            .strip_prefix(var)?
            .strip_prefix('=')?;
        Some(PathBuf::from(rest.trim_matches(|c| c == '"' || c == '\'')))
    })
}

/// One test's world: its own HOME, config dirs, site config, envs_dir and module root.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub site_config: PathBuf,
    pub site_modules: PathBuf,
}

impl TestEnv {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("envmod-test")
            .tempdir()
            .expect("tempdir");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let site_config = dir.path().join("site-config.yaml");
        std::fs::write(&site_config, "# test site config\n").unwrap();
        let site_modules = dir.path().join("site-modules");
        write_site_modules(&site_modules);
        Self {
            dir,
            home,
            site_config,
            site_modules,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn envs_dir(&self) -> PathBuf {
        self.home.join(".envmod/envs")
    }

    pub fn module_root(&self) -> PathBuf {
        self.home.join("privatemodules")
    }

    pub fn set_site_config(&self, yaml: &str) {
        std::fs::write(&self.site_config, yaml).unwrap();
    }

    /// A world on one local conda channel, `channel/` in its directory, holding the standard
    /// test packages ([`channel::standard_packages`]): what most conda tests start from.
    pub fn with_channel() -> Self {
        Self::with_channel_of(Vec::new())
    }

    /// [`TestEnv::with_channel`] with `extra` packages in the channel beside the standard ones.
    pub fn with_channel_of(extra: Vec<channel::Pkg>) -> Self {
        let t = Self::new();
        let dir = t.path().join("channel");
        let mut pkgs = channel::standard_packages();
        pkgs.extend(extra);
        channel::write_channel(&dir, &pkgs);
        t.use_channel(&dir, "");
        t
    }

    /// A world on a channel built elsewhere (one that several tests share, say), with
    /// `extra` YAML keys in its site config.
    pub fn on_channel(dir: &Path, extra: &str) -> Self {
        let t = Self::new();
        t.use_channel(dir, extra);
        t
    }

    /// Site config naming `dir` as the only channel, followed by `extra` YAML keys.
    fn use_channel(&self, dir: &Path, extra: &str) {
        self.set_site_config(&format!("channels: [{}]\n{extra}", dir.display()));
    }

    /// Variables every envmod run in this world gets.
    pub fn vars(&self) -> Vec<(String, String)> {
        vec![
            ("HOME".into(), self.home.display().to_string()),
            (
                "ENVMOD_SITE_CONFIG".into(),
                self.site_config.display().to_string(),
            ),
            (
                "XDG_CONFIG_HOME".into(),
                self.home.join(".config").display().to_string(),
            ),
            (
                "XDG_DATA_HOME".into(),
                self.home.join(".local/share").display().to_string(),
            ),
            (
                "XDG_CACHE_HOME".into(),
                self.home.join(".cache").display().to_string(),
            ),
        ]
    }

    /// `envmod ARGS` with no module system in the environment.
    pub fn envmod(&self) -> Command {
        let mut cmd = Command::cargo_bin("envmod").unwrap();
        for k in [
            "LOADEDMODULES",
            "_LMFILES_",
            "LMOD_CMD",
            "MODULES_CMD",
            "MODULEPATH",
            "__MODULES_LMTAG",
        ] {
            cmd.env_remove(k);
        }
        for (k, _) in std::env::vars() {
            if k.starts_with("ENVMOD_") && !k.starts_with("ENVMOD_TEST") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.vars()).current_dir(self.path());
        cmd
    }

    /// Run `envmod ARGS` to the end, with no module system in the environment.
    pub fn run(&self, args: &[&str]) -> Output {
        self.envmod().args(args).output().expect("envmod runs")
    }

    /// `envmod ARGS` on a pseudo-terminal (`script` from util-linux), where progress bars
    /// replace plain lines; stdout holds everything the terminal showed.
    pub fn run_on_pty(&self, args: &[&str]) -> Output {
        let envmod = assert_cmd::cargo::cargo_bin("envmod");
        let cmd = std::iter::once(sh(&envmod.display().to_string()))
            .chain(args.iter().map(|a| sh(a)))
            .collect::<Vec<_>>()
            .join(" ");
        Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .envs(self.vars())
            .env("TERM", "xterm-256color")
            .current_dir(self.path())
            .output()
            .expect("script(1) from util-linux (tests/provision.sh checks for it)")
    }

    /// Start `n` copies of `envmod ARGS` together and wait for all of them.
    pub fn run_at_once(&self, n: usize, args: &[&str]) -> Vec<Output> {
        let children: Vec<_> = (0..n)
            .map(|_| {
                self.envmod()
                    .args(args)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("envmod starts")
            })
            .collect();
        children
            .into_iter()
            .map(|c| c.wait_with_output().expect("envmod finishes"))
            .collect()
    }

    /// Run a bash script in a clean `env -i` login-less shell with `ms` initialised and the
    /// site modules on MODULEPATH. `envmod` on PATH is the binary under test.
    pub fn module_shell(&self, ms: Ms, script: &str) -> Output {
        self.module_shell_with(ms, script, &[])
    }

    pub fn module_shell_with(&self, ms: Ms, script: &str, extra_env: &[(&str, &str)]) -> Output {
        self.shell_on(ms, &self.site_modules, script, extra_env)
    }

    /// Run a bash script in a clean shell as a login on a hierarchical site would have it:
    /// `ms` initialised, MODULEPATH only the site tree's `Core`, and the sticky `StdEnv/2024`
    /// loaded (see [`hierarchy`]).
    pub fn tree_shell(&self, ms: Ms, site: hierarchy::Site, script: &str) -> Output {
        self.tree_shell_with(ms, site, script, &[])
    }

    pub fn tree_shell_with(
        &self,
        ms: Ms,
        site: hierarchy::Site,
        script: &str,
        extra_env: &[(&str, &str)],
    ) -> Output {
        let core = self.tree(ms, site);
        self.shell_on(
            ms,
            &core,
            &format!("module load StdEnv/2024 || exit 97\n{script}"),
            extra_env,
        )
    }

    /// The `Core` directory of site `site`'s tree for `ms`, written on first use.
    pub fn tree(&self, ms: Ms, site: hierarchy::Site) -> PathBuf {
        hierarchy::write_tree(&self.path().join("trees"), ms, site)
    }

    fn shell_on(
        &self,
        ms: Ms,
        modulepath: &Path,
        script: &str,
        extra_env: &[(&str, &str)],
    ) -> Output {
        let init = ms.init_script();
        let envmod_bin = assert_cmd::cargo::cargo_bin("envmod");
        let bin_dir = self.path().join("envmod-bin");
        std::fs::create_dir_all(&bin_dir).unwrap();
        let link = bin_dir.join("envmod");
        if !link.exists() {
            std::os::unix::fs::symlink(&envmod_bin, &link).unwrap();
        }
        let full = format!(
            "source {init}\nexport MODULEPATH={mp}\nexport PATH={bin}:$PATH\nset -o pipefail\n{script}\n",
            init = sh(&init.display().to_string()),
            mp = sh(&modulepath.display().to_string()),
            bin = sh(&bin_dir.display().to_string()),
        );
        let mut cmd = Command::new("env");
        cmd.arg("-i");
        for (k, v) in self.vars() {
            cmd.arg(format!("{k}={v}"));
        }
        cmd.arg("PATH=/usr/bin:/bin")
            .arg("USER=envmodtest")
            .arg("LMOD_IGNORE_CACHE=1");
        for (k, v) in extra_env {
            cmd.arg(format!("{k}={v}"));
        }
        cmd.args(["bash", "--norc", "--noprofile", "-c", &full])
            .current_dir(self.path());
        cmd.output().expect("bash runs")
    }
}

/// Assert that a command succeeded, showing its output when it did not.
#[track_caller]
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({})\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Where Debian's Open MPI (openmpi-bin, libopenmpi-dev) lives; `mpirun` is /usr/bin's.
pub const DEBIAN_OPENMPI: &str = "/usr/lib/x86_64-linux-gnu/openmpi";

/// What `mpirun` needs to start ranks as root, and more ranks than this machine has cores;
/// the `openmpi/4.1.4` module sets them.
pub const OMPI_AS_ROOT: [(&str, &str); 3] = [
    ("OMPI_ALLOW_RUN_AS_ROOT", "1"),
    ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"),
    ("OMPI_MCA_rmaps_base_oversubscribe", "1"),
];

/// Fake site modules, as Tcl modulefiles so both module systems read them:
///
/// | module | stands for | sets |
/// |---|---|---|
/// | `gcc/12.2`, `gcc/13.1` | compilers | `FAKE_GCC_VERSION`, PATH |
/// | `openmpi/4.1` | an MPI (no real one) | `FAKE_MPI_VERSION`, PATH |
/// | `python/3.11` | the site Python | PATH to [`MODULE_PYTHON`] |
/// | `openmpi/4.1.4` | Debian's real Open MPI ([`DEBIAN_OPENMPI`]) | `MPI_HOME`, `MPICC`, CPATH, [`OMPI_AS_ROOT`] |
/// | `openmpi/4.1.6` | a site's Open MPI 4.1.6 (not installed here) | `MPI_HOME`, PATH, LD_LIBRARY_PATH |
/// | `OpenMPI/4.1.6-GCC-12.3.0` | EasyBuild's name for it | `EBROOTOPENMPI`, `EBVERSIONOPENMPI`, PATH, LD_LIBRARY_PATH |
/// | `mpi/openmpi-x86_64` | RHEL's name for its Open MPI: no version | `MPI_HOME`, `MPI_COMPILER`, `MPI_SUFFIX`, PATH |
/// | `mpich/4.2.1` | a site's MPICH (not installed here) | `MPI_HOME`, PATH, LD_LIBRARY_PATH |
/// | `cuda/12.2`, `CUDA/12.2.0` | a CUDA toolkit, no driver | `CUDA_HOME` only |
/// | `mkl/2024` | Intel MKL | `MKLROOT` only |
pub fn write_site_modules(root: &Path) {
    let simple = |name: &str, version: &str, var: &str| {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let bin = root.join(format!("_bin/{name}-{version}"));
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(
            dir.join(version),
            format!(
                "#%Module1.0\nmodule-whatis \"fake {name} {version}\"\nsetenv {var} {version}\nprepend-path PATH {}\n",
                bin.display()
            ),
        )
        .unwrap();
    };
    simple("gcc", "12.2", "FAKE_GCC_VERSION");
    simple("gcc", "13.1", "FAKE_GCC_VERSION");
    simple("openmpi", "4.1", "FAKE_MPI_VERSION");

    let py_bin = root.join("_bin/python-3.11");
    std::fs::create_dir_all(&py_bin).unwrap();
    for name in ["python3", "python"] {
        let link = py_bin.join(name);
        if !link.exists() {
            std::os::unix::fs::symlink(MODULE_PYTHON, link).unwrap();
        }
    }
    std::fs::create_dir_all(root.join("python")).unwrap();
    std::fs::write(
        root.join("python/3.11"),
        format!(
            "#%Module1.0\nmodule-whatis \"fake site python 3.11\"\nprepend-path PATH {}\n",
            py_bin.display()
        ),
    )
    .unwrap();

    let tcl = |module: &str, whatis: &str, body: &str| {
        let file = root.join(module);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(
            file,
            format!("#%Module1.0\nmodule-whatis {{{whatis}}}\n{body}"),
        )
        .unwrap();
    };
    let as_root: String = OMPI_AS_ROOT
        .iter()
        .map(|(k, v)| format!("setenv {k} {v}\n"))
        .collect();
    tcl(
        "openmpi/4.1.4",
        "Debian's Open MPI 4.1.4 (apt: openmpi-bin libopenmpi-dev)",
        &format!(
            "setenv MPI_HOME {DEBIAN_OPENMPI}\nsetenv MPICC /usr/bin/mpicc\nprepend-path CPATH {DEBIAN_OPENMPI}/include\n{as_root}"
        ),
    );
    let site_mpi = "/opt/site/openmpi/4.1.6";
    tcl(
        "openmpi/4.1.6",
        "a site's Open MPI 4.1.6 (not installed on this machine)",
        &format!(
            "setenv MPI_HOME {site_mpi}\nprepend-path PATH {site_mpi}/bin\nprepend-path LD_LIBRARY_PATH {site_mpi}/lib\n{as_root}"
        ),
    );
    let eb = "/opt/easybuild/software/OpenMPI/4.1.6-GCC-12.3.0";
    tcl(
        "OpenMPI/4.1.6-GCC-12.3.0",
        "EasyBuild's Open MPI 4.1.6 built with GCC 12.3.0 (not installed on this machine)",
        &format!(
            "setenv EBROOTOPENMPI {eb}\nsetenv EBVERSIONOPENMPI 4.1.6\nprepend-path PATH {eb}/bin\nprepend-path LD_LIBRARY_PATH {eb}/lib\n{as_root}"
        ),
    );
    let rhel = "/usr/lib64/openmpi";
    tcl(
        "mpi/openmpi-x86_64",
        "RHEL's Open MPI package (not installed on this machine)",
        &format!(
            "setenv MPI_HOME {rhel}\nsetenv MPI_BIN {rhel}/bin\nsetenv MPI_COMPILER openmpi-x86_64\nsetenv MPI_SUFFIX _openmpi\nprepend-path PATH {rhel}/bin\n{as_root}"
        ),
    );
    let site_mpich = "/opt/site/mpich/4.2.1";
    tcl(
        "mpich/4.2.1",
        "a site's MPICH 4.2.1 (not installed on this machine)",
        &format!(
            "setenv MPI_HOME {site_mpich}\nprepend-path PATH {site_mpich}/bin\nprepend-path LD_LIBRARY_PATH {site_mpich}/lib\n"
        ),
    );
    for (module, dir) in [("cuda/12.2", "12.2"), ("CUDA/12.2.0", "12.2.0")] {
        tcl(
            module,
            "a CUDA toolkit (not installed; this machine has no GPU driver)",
            &format!("setenv CUDA_HOME /opt/site/cuda/{dir}\n"),
        );
    }
    tcl(
        "mkl/2024",
        "Intel MKL 2024 (not installed on this machine)",
        "setenv MKLROOT /opt/site/intel/mkl/2024\n",
    );
}

/// Build a pure-Python wheel `name-version-py3-none-any.whl` with one module that defines
/// `VALUE` and `main()`, and a console script `<name>-hello` running it, using the zipfile
/// module of a real Python.
pub fn build_wheel(dir: &Path, name: &str, version: &str) -> PathBuf {
    let script = r#"
import sys, zipfile, hashlib, base64, os
out, name, version = sys.argv[1:4]
dist = f"{name}-{version}.dist-info"
files = {
    f"{name}/__init__.py": f"VALUE = 'hello from {name} {version}'\ndef main():\n    print(VALUE)\n",
    f"{dist}/entry_points.txt": f"[console_scripts]\n{name}-hello = {name}:main\n",
    f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
    f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: envmod-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
for path, text in files.items():
    data = text.encode()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record.append(f"{path},sha256={digest},{len(data)}")
record.append(f"{dist}/RECORD,,")
files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
whl = os.path.join(out, f"{name}-{version}-py3-none-any.whl")
with zipfile.ZipFile(whl, "w") as z:
    for path, text in files.items():
        z.writestr(path, text)
print(whl)
"#;
    let out = Command::new(MODULE_PYTHON)
        .args(["-c", script])
        .arg(dir)
        .args([name, version])
        .output()
        .expect("python runs");
    PathBuf::from(ok(&out).trim())
}

/// Every variable of a shell as `NAME=value` lines, for before/after comparisons.
pub const DUMP_ENV: &str = "env -0 | sort -z | tr '\\0' '\\n'";

/// A colleague in the group `envmodtest`, created by tests/provision.sh.
pub const PEER: &str = "envmod-peer";
/// An account outside that group, created by tests/provision.sh.
pub const OTHER: &str = "envmod-other";
pub const GROUP: &str = "envmodtest";

/// Fail, saying how to fix it, when the test accounts are missing.
#[track_caller]
pub fn require_account(user: &str) {
    let found = Command::new("id")
        .arg(user)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "test account {user} does not exist: run `bash tests/provision.sh` as root (or `tests/run`)"
    );
}

/// Run `script` with bash as `user` (root runs it as itself), with `vars` set.
pub fn bash_as(user: Option<&str>, script: &str, vars: &[(String, String)], cwd: &Path) -> Output {
    let mut cmd = match user {
        Some(u) => {
            require_account(u);
            let mut c = Command::new("runuser");
            c.args(["-u", u, "--"]);
            c
        }
        None => Command::new("env"),
    };
    cmd.arg("env").arg("-i");
    for (k, v) in vars {
        cmd.arg(format!("{k}={v}"));
    }
    cmd.args(["PATH=/usr/bin:/bin", "LANG=C.UTF-8"])
        .args(["bash", "--norc", "--noprofile", "-c", script])
        .current_dir(cwd);
    cmd.output().expect("bash runs")
}

impl TestEnv {
    /// A world that `user` owns and runs envmod in: its HOME and everything under the test
    /// directory belong to `user`, and a copy of the binary under test is in `bin/`.
    pub fn owned_by(user: &str) -> Self {
        require_account(user);
        let t = Self::new();
        let bin = t.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(assert_cmd::cargo::cargo_bin("envmod"), bin.join("envmod")).unwrap();
        let st = Command::new("chown")
            .args(["-R", &format!("{user}:"), &t.path().display().to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "chown to {user} failed");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        t
    }

    /// `envmod ARGS` as `user`, in a clean environment with this world's variables.
    pub fn envmod_as(&self, user: &str, args: &[&str]) -> Output {
        let bin = self.path().join("bin/envmod");
        let line = std::iter::once(sh(&bin.display().to_string()))
            .chain(args.iter().map(|a| sh(a)))
            .collect::<Vec<_>>()
            .join(" ");
        bash_as(
            Some(user),
            &format!("exec {line}"),
            &self.vars(),
            self.path(),
        )
    }
}

/// Run a program to success, e.g. `cp -a` or `mv`.
#[track_caller]
pub fn run_ok(program: &str, args: &[&Path]) {
    let st = Command::new(program)
        .args(args)
        .status()
        .expect("program runs");
    assert!(st.success(), "{program} {args:?} failed");
}

/// The Python of the test-only venv holding conda-lock and py-rattler (`tests/peers.sh`,
/// which `tests/run` runs). A test that needs it fails, saying how to install it.
pub fn peers_python() -> PathBuf {
    let hint = "run tests/run, or: bash tests/peers.sh .test-tools && export ENVMOD_TEST_PEERS_PYTHON=$PWD/.test-tools/peers/bin/python";
    let path = std::env::var_os("ENVMOD_TEST_PEERS_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            let p = Path::new(REPO).join(".test-tools/peers/bin/python");
            p.exists().then_some(p)
        })
        .unwrap_or_else(|| panic!("the peers venv (conda-lock, py-rattler) is missing: {hint}"));
    assert!(path.exists(), "{} does not exist: {hint}", path.display());
    path
}

/// Wheels of ipykernel and its dependencies (`tests/peers.sh`), for `pip install --no-index`.
pub fn wheelhouse() -> PathBuf {
    let dir = peers_python()
        .parent()
        .and_then(|bin| bin.parent())
        .and_then(|venv| venv.parent())
        .expect("peers venv sits in the tools dir")
        .join("wheelhouse");
    assert!(
        dir.is_dir(),
        "{} is missing: run tests/run, or bash tests/peers.sh .test-tools",
        dir.display()
    );
    dir
}

/// The pins of tests/wheels.txt: `(name, version, sha256)` of each real wheel from PyPI that
/// tests/peers.sh downloads into `<tools>/wheels`.
pub fn pinned_wheels() -> Vec<(&'static str, &'static str, &'static str)> {
    include_str!("../wheels.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (req, hash) = l
                .split_once(" --hash=sha256:")
                .unwrap_or_else(|| panic!("tests/wheels.txt: {l:?} has no --hash=sha256:"));
            let (name, version) = req
                .split_once("==")
                .unwrap_or_else(|| panic!("tests/wheels.txt: {l:?} is not name==version"));
            (name.trim(), version.trim(), hash.trim())
        })
        .collect()
}

/// The real wheel of `name` pinned in tests/wheels.txt, checked against its sha256. A test
/// that needs it fails, saying how to download it, when it is missing or differs.
pub fn pinned_wheel(name: &str) -> PathBuf {
    let (_, version, sha256) = pinned_wheels()
        .into_iter()
        .find(|(n, _, _)| *n == name)
        .unwrap_or_else(|| panic!("tests/wheels.txt pins no {name}"));
    let dir = tools_dir().join("wheels");
    let hint = format!(
        "run tests/run, or: bash tests/peers.sh {} (it downloads the wheels of tests/wheels.txt from PyPI)",
        tools_dir().display()
    );
    let prefix = format!("{}-{version}-", name.replace('-', "_"));
    let found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}: the pinned wheels are missing: {hint}",
                dir.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
        })
        .collect();
    let whl = found
        .iter()
        .find(|p| channel::sha256_hex(std::fs::read(p).unwrap()) == sha256)
        .unwrap_or_else(|| {
            panic!(
                "no {prefix}*.whl with sha256 {sha256} in {} (found {found:?}): {hint}",
                dir.display()
            )
        });
    whl.clone()
}

/// The real mpi4py wheel from PyPI (tests/wheels.txt).
pub fn mpi4py_wheel() -> PathBuf {
    pinned_wheel("mpi4py")
}

/// Run `script` with the peers' Python; its stdout.
pub fn peer(script: &str, args: &[&str]) -> String {
    let out = Command::new(peers_python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("the peers' python runs");
    ok(&out)
}
