//! Local conda channels built by the tests themselves.
//!
//! Packages are real `.conda` / `.tar.bz2` archives written with `rattler_package_streaming`
//! and indexed with `rattler_index`, so a `file://` URL of the channel directory can be
//! solved against and installed from like any other channel.
//!
//! ```ignore
//! let dir = tempfile::tempdir().unwrap();
//! let channel = common::channel::standard_channel(dir.path());
//! let url = common::channel::channel_url(&channel);
//! ```
//!
//! Builds are reproducible: archives carry fixed mtimes and `index.json` a fixed timestamp.
//!
//! Beside the standard channel, conda-forge's shapes for what a site's modules and Python can
//! provide: [`mpi_packages`] (the `mpi` mutex, conda's openmpi and mpich, a package with MPI
//! variants), [`mpi4py_packages`] (the real mpi4py wheel from PyPI, repackaged by
//! [`from_wheel`]), [`cuda_packages`] and [`numpy_packages`]; [`mpi_channel`] and
//! [`provides_channel`] write them with the standard packages.

use std::{
    fs,
    path::{Path, PathBuf},
};

use rattler_conda_types::compression_level::CompressionLevel;
use serde_json::{Value, json};

/// The placeholder conda-build writes into text files; installers replace it by the prefix.
pub const PLACEHOLDER: &str = "/opt/anaconda1anaconda2anaconda3";

/// The real interpreter behind the stand-in `python 3.12.0` package.
pub const HOST_PYTHON: &str = "/usr/bin/python3.11";

/// Version of the stand-in conda Python in the standard channel, and its `X.Y`.
pub const PYTHON_VERSION: &str = "3.12.0";
pub const PYTHON_XY: &str = "3.12";

/// Build string given to every noarch python package made by [`noarch_python`].
pub const NOARCH_BUILD: &str = "pyhd8ed1ab_0";

/// `index.json` timestamp (ms since the epoch) of every package: 2023-11-14.
const TIMESTAMP_MS: u64 = 1_700_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Conda,
    TarBz2,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Conda => ".conda",
            Format::TarBz2 => ".tar.bz2",
        }
    }
}

/// One file of a package, at `path` relative to the package root (the install prefix).
#[derive(Debug, Clone)]
pub struct File {
    pub path: String,
    pub contents: Vec<u8>,
    pub executable: bool,
    /// Declared in paths.json as `file_mode: text` with [`PLACEHOLDER`] as prefix placeholder.
    pub prefix_placeholder: bool,
}

impl File {
    pub fn new(path: &str, contents: impl AsRef<[u8]>) -> Self {
        File {
            path: path.trim_start_matches('/').to_string(),
            contents: contents.as_ref().to_vec(),
            executable: false,
            prefix_placeholder: false,
        }
    }

    /// Mode 0755 in the archive.
    pub fn executable(mut self) -> Self {
        self.executable = true;
        self
    }

    /// The contents hold [`PLACEHOLDER`], to be replaced by the prefix on install.
    pub fn with_prefix_placeholder(mut self) -> Self {
        self.prefix_placeholder = true;
        self
    }
}

/// One package to build.
#[derive(Debug, Clone)]
pub struct Pkg {
    pub name: String,
    pub version: String,
    pub build: String,
    pub build_number: u64,
    /// `"noarch"`, `"linux-64"` or `"osx-arm64"`.
    pub subdir: String,
    pub depends: Vec<String>,
    /// `constrains` in index.json: specs that must hold if their package is installed.
    pub constrains: Vec<String>,
    /// `noarch: python` in index.json plus an info/link.json with the entry points.
    pub noarch_python: bool,
    /// `noarch: generic` in index.json, as conda-forge's metapackages (`mpi`, `cuda-version`).
    pub noarch_generic: bool,
    pub files: Vec<File>,
    /// `"cmd = module.sub:func"`, only for noarch python packages.
    pub entry_points: Vec<String>,
    pub format: Format,
}

impl Pkg {
    /// A bare package with no files and no dependencies, built as `.conda`.
    pub fn new(name: &str, version: &str, build: &str, subdir: &str) -> Self {
        assert!(
            ["noarch", "linux-64", "osx-arm64"].contains(&subdir),
            "unsupported subdir {subdir:?}"
        );
        Pkg {
            name: name.to_string(),
            version: version.to_string(),
            build: build.to_string(),
            build_number: 0,
            subdir: subdir.to_string(),
            depends: Vec::new(),
            constrains: Vec::new(),
            noarch_python: false,
            noarch_generic: false,
            files: Vec::new(),
            entry_points: Vec::new(),
            format: Format::Conda,
        }
    }

    /// `name-version-build`.
    pub fn stem(&self) -> String {
        format!("{}-{}-{}", self.name, self.version, self.build)
    }

    /// The archive's file name, e.g. `alpha-1.0-pyhd8ed1ab_0.conda`.
    pub fn filename(&self) -> String {
        format!("{}{}", self.stem(), self.format.extension())
    }

    /// The Python module of a noarch python package: the name with `-` as `_`.
    pub fn module(&self) -> String {
        self.name.replace('-', "_")
    }

    /// Add (or replace, by path) a plain file.
    pub fn with_file(self, path: &str, contents: impl AsRef<[u8]>) -> Self {
        self.with(File::new(path, contents))
    }

    /// Add (or replace, by path) an executable file.
    pub fn with_executable(self, path: &str, contents: impl AsRef<[u8]>) -> Self {
        self.with(File::new(path, contents).executable())
    }

    /// Add (or replace, by path) a file holding [`PLACEHOLDER`].
    pub fn with_prefix_file(self, path: &str, contents: impl AsRef<[u8]>) -> Self {
        self.with(File::new(path, contents).with_prefix_placeholder())
    }

    /// Add (or replace, by path) a [`File`].
    pub fn with(mut self, file: File) -> Self {
        self.files.retain(|f| f.path != file.path);
        self.files.push(file);
        self
    }

    pub fn with_depends(mut self, depends: &[&str]) -> Self {
        self.depends.extend(depends.iter().map(|d| d.to_string()));
        self
    }

    pub fn with_constrains(mut self, constrains: &[&str]) -> Self {
        self.constrains
            .extend(constrains.iter().map(|c| c.to_string()));
        self
    }

    /// `noarch: generic`, in the noarch subdir.
    pub fn noarch_generic(mut self) -> Self {
        self.subdir = "noarch".to_string();
        self.noarch_generic = true;
        self
    }

    pub fn with_build(mut self, build: &str, build_number: u64) -> Self {
        self.build = build.to_string();
        self.build_number = build_number;
        self
    }

    /// Add a console script `"cmd = pkg.sub:func"`, and write `site-packages/pkg/sub.py`
    /// (unless the package already has that file) whose `func` prints
    /// `"<cmd> ran <version>"` followed by its arguments, and returns 0.
    pub fn with_entry_point(mut self, ep: &str) -> Self {
        assert!(
            self.noarch_python,
            "entry points need a noarch python package"
        );
        let (cmd, target) = ep
            .split_once('=')
            .unwrap_or_else(|| panic!("entry point {ep:?} is not `cmd = module:func`"));
        let (module, func) = target
            .trim()
            .split_once(':')
            .unwrap_or_else(|| panic!("entry point {ep:?} is not `cmd = module:func`"));
        let cmd = cmd.trim();
        let parts: Vec<&str> = module.split('.').collect();
        for depth in 1..parts.len() {
            let init = format!("site-packages/{}/__init__.py", parts[..depth].join("/"));
            if !self.files.iter().any(|f| f.path == init) {
                self.files.push(File::new(&init, ""));
            }
        }
        let path = format!("site-packages/{}.py", parts.join("/"));
        if !self.files.iter().any(|f| f.path == path) {
            let body = format!(
                "import sys\n\n\ndef {func}():\n    print({msg:?}, *sys.argv[1:])\n    return 0\n\n\nif __name__ == '__main__':\n    sys.exit({func}())\n",
                msg = format!("{cmd} ran {}", self.version),
            );
            self.files.push(File::new(&path, body));
        }
        self.entry_points.push(format!("{cmd} = {module}:{func}"));
        self
    }

    pub fn tar_bz2(mut self) -> Self {
        self.format = Format::TarBz2;
        self
    }
}

/// A `noarch: python` package with `site-packages/<module>/__init__.py` defining
/// `VERSION = '<version>'` and `NAME = '<name>'`, plus a `.dist-info/METADATA`.
/// Depends on `python >=3.8` and `depends`; if `depends` already names `python`, that spec
/// replaces the default one.
pub fn noarch_python(name: &str, version: &str, depends: &[&str]) -> Pkg {
    let mut pkg = Pkg::new(name, version, NOARCH_BUILD, "noarch");
    pkg.noarch_python = true;
    if !depends.iter().any(|d| spec_name(d) == "python") {
        pkg.depends.push("python >=3.8".to_string());
    }
    let module = pkg.module();
    let dist_info = format!("site-packages/{module}-{version}.dist-info");
    pkg.with_depends(depends)
        .with_file(
            &format!("site-packages/{module}/__init__.py"),
            format!("VERSION = '{version}'\nNAME = '{name}'\n"),
        )
        .with_file(
            &format!("{dist_info}/METADATA"),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"),
        )
        .with_file(&format!("{dist_info}/INSTALLER"), "conda\n")
}

/// A linux-64 package depending on `depends`, with no files yet.
pub fn linux64(name: &str, version: &str, build: &str, depends: &[&str]) -> Pkg {
    Pkg::new(name, version, build, "linux-64").with_depends(depends)
}

/// The stand-in conda Python: `python 3.12.0 h0_cpython` whose `bin/python3.12`,
/// `bin/python3` and `bin/python` are bash wrappers running [`HOST_PYTHON`] as if it lived in
/// the prefix (`exec -a`, with a `bin/pyvenv.cfg` beside it), so `sys.prefix` is the
/// environment and its pip installs there; the prefix's `lib/python3.12/site-packages` is
/// on PYTHONPATH, so packages installed for 3.12 import. (The interpreter itself still
/// reports 3.11.)
pub fn python() -> Pkg {
    let wrapper = format!(
        r#"#!/bin/bash
# Stand-in for a conda CPython {PYTHON_VERSION} (envmod test channel): the host's Python run as
# this prefix's interpreter, with the prefix's 3.12 site-packages on PYTHONPATH.
prefix=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd) || exit 1
PYTHONPATH="$prefix/lib/python{PYTHON_XY}/site-packages${{PYTHONPATH:+:$PYTHONPATH}}"
export PYTHONPATH
exec -a "$prefix/bin/$(basename -- "$0")" {HOST_PYTHON} "$@"
"#
    );
    let home = std::path::Path::new(HOST_PYTHON)
        .parent()
        .unwrap()
        .display()
        .to_string();
    linux64("python", PYTHON_VERSION, "h0_cpython", &["__glibc >=2.17"])
        .with_executable(&format!("bin/python{PYTHON_XY}"), &wrapper)
        .with_executable("bin/python3", &wrapper)
        .with_executable("bin/python", &wrapper)
        .with_file(
            "bin/pyvenv.cfg",
            format!("home = {home}\ninclude-system-site-packages = true\n"),
        )
        .with_file(&format!("lib/python{PYTHON_XY}/site-packages/.keep"), "")
}

/// `libfoo 1.2.0 h1234_0`: a fake shared library, a config file with the prefix
/// placeholder, and activation / deactivation scripts setting `FOO_HOME` and `FOO_ACTIVATED`.
pub fn libfoo() -> Pkg {
    linux64("libfoo", "1.2.0", "h1234_0", &["__glibc >=2.17"])
        .with_file("lib/libfoo.so.1", b"\x7fELF not really a library\n")
        .with_prefix_file(
            "etc/foo.conf",
            format!(
                "# libfoo configuration\nprefix = {PLACEHOLDER}\ndata = {PLACEHOLDER}/share/foo\n"
            ),
        )
        .with_file(
            "etc/conda/activate.d/libfoo_activate.sh",
            "export FOO_HOME=\"$CONDA_PREFIX/share/foo\"\nexport FOO_ACTIVATED=yes\n",
        )
        .with_file(
            "etc/conda/deactivate.d/libfoo_deactivate.sh",
            "unset FOO_HOME\nunset FOO_ACTIVATED\n",
        )
}

/// The packages of [`standard_channel`].
pub fn standard_packages() -> Vec<Pkg> {
    vec![
        noarch_python("alpha", "1.0", &[]),
        noarch_python("alpha", "2.0", &[]).with_entry_point("alpha-cli = alpha.cli:main"),
        noarch_python("beta", "1.0", &["alpha >=1"]).tar_bz2(),
        noarch_python("gamma", "1.0", &["libfoo >=1.0"]),
        noarch_python("delta", "1.0", &["alpha >=3"]),
        noarch_python("needs-new-python", "1.0", &["python >=3.99"]),
        libfoo(),
        python(),
        // The laptop platform: the same Python and libfoo built for Apple silicon, and a
        // package that exists for Linux only.
        for_osx_arm64(libfoo()),
        for_osx_arm64(python()),
        linux64("linuxonly", "1.0", "h0_0", &["__glibc >=2.17"]),
    ]
}

/// `pkg` built for `osx-arm64` instead, depending on macOS 11 instead of glibc.
pub fn for_osx_arm64(mut pkg: Pkg) -> Pkg {
    pkg.subdir = "osx-arm64".to_string();
    pkg.depends = pkg
        .depends
        .iter()
        .map(|d| {
            if d.starts_with("__glibc") {
                "__osx >=11.0".to_string()
            } else {
                d.clone()
            }
        })
        .collect();
    pkg
}

/// Write the standard test channel into `dir` and return `dir`:
///
/// | file | depends |
/// |---|---|
/// | noarch/alpha-1.0-pyhd8ed1ab_0.conda | python >=3.8 |
/// | noarch/alpha-2.0-pyhd8ed1ab_0.conda (entry point `alpha-cli = alpha.cli:main`) | python >=3.8 |
/// | noarch/beta-1.0-pyhd8ed1ab_0.tar.bz2 | python >=3.8, alpha >=1 |
/// | noarch/gamma-1.0-pyhd8ed1ab_0.conda | python >=3.8, libfoo >=1.0 |
/// | noarch/delta-1.0-pyhd8ed1ab_0.conda | python >=3.8, alpha >=3 (unsatisfiable) |
/// | noarch/needs-new-python-1.0-pyhd8ed1ab_0.conda | python >=3.99 (unsatisfiable) |
/// | linux-64/libfoo-1.2.0-h1234_0.conda | __glibc >=2.17 |
/// | linux-64/python-3.12.0-h0_cpython.conda | __glibc >=2.17 |
/// | linux-64/linuxonly-1.0-h0_0.conda | __glibc >=2.17 |
/// | osx-arm64/libfoo-1.2.0-h1234_0.conda | __osx >=11.0 |
/// | osx-arm64/python-3.12.0-h0_cpython.conda | __osx >=11.0 |
pub fn standard_channel(dir: &Path) -> PathBuf {
    write_channel(dir, &standard_packages());
    dir.to_path_buf()
}

/// `n` noarch python packages `pkg000`, `pkg001`, … (version 1.0; every third one after the
/// first depends on `pkg<i/2> >=1`), plus the stand-in [`python`] so the channel solves on
/// its own. Returns `dir`.
pub fn many_noarch(dir: &Path, n: usize) -> PathBuf {
    let mut pkgs: Vec<Pkg> = (0..n)
        .map(|i| {
            let dep = format!("{} >=1", many_name(i / 2));
            let depends: Vec<&str> = if i > 0 && i % 3 == 0 {
                vec![dep.as_str()]
            } else {
                vec![]
            };
            noarch_python(&many_name(i), "1.0", &depends)
        })
        .collect();
    pkgs.push(python());
    write_channel(dir, &pkgs);
    dir.to_path_buf()
}

/// The name of package `i` of [`many_noarch`].
pub fn many_name(i: usize) -> String {
    format!("pkg{i:03}")
}

/// The `file://` URL of a channel directory, with a trailing slash.
pub fn channel_url(dir: &Path) -> url::Url {
    let dir = dir.canonicalize().expect("channel dir exists");
    url::Url::from_directory_path(&dir).expect("absolute channel path")
}

/// Build every package into `dir/<subdir>/` (replacing archives of the same name), always
/// create `dir/noarch` and `dir/linux-64`, and (re)index the whole channel.
pub fn write_channel(dir: &Path, pkgs: &[Pkg]) {
    for subdir in ["noarch", "linux-64"] {
        fs::create_dir_all(dir.join(subdir)).expect("create channel subdir");
    }
    let stage_root = staging_dir();
    for (i, pkg) in pkgs.iter().enumerate() {
        fs::create_dir_all(dir.join(&pkg.subdir)).expect("create channel subdir");
        let stage = stage_root.path().join(i.to_string());
        build_package(pkg, &stage, &dir.join(&pkg.subdir).join(pkg.filename()));
    }
    index(dir);
}

/// A scratch directory for package contents. On tmpfs (/dev/shm) when there is one: staging
/// creates and deletes ~10 files per package, which is slow on some disks and adds up in
/// [`many_noarch`].
fn staging_dir() -> tempfile::TempDir {
    let builder = || {
        let mut b = tempfile::Builder::new();
        b.prefix("envmod-channel-stage");
        b
    };
    let shm = Path::new("/dev/shm");
    shm.is_dir()
        .then(|| builder().tempdir_in(shm).ok())
        .flatten()
        .unwrap_or_else(|| builder().tempdir().expect("staging tempdir"))
}

/// Write `pkg`'s files and info/ into `stage`, then archive them to `out`.
fn build_package(pkg: &Pkg, stage: &Path, out: &Path) {
    assert!(
        pkg.entry_points.is_empty() || pkg.noarch_python,
        "{}: entry points need noarch python",
        pkg.name
    );
    let mut paths = Vec::new();
    let mut paths_json = Vec::new();
    let mut files_list = String::new();
    for file in &pkg.files {
        let p = write_file(stage, &file.path, &file.contents, file.executable);
        let mut entry = json!({
            "_path": file.path,
            "path_type": "hardlink",
            "sha256": sha256_hex(&file.contents),
            "size_in_bytes": file.contents.len(),
        });
        if file.prefix_placeholder {
            entry["file_mode"] = json!("text");
            entry["prefix_placeholder"] = json!(PLACEHOLDER);
        }
        paths_json.push(entry);
        files_list.push_str(&file.path);
        files_list.push('\n');
        paths.push(p);
    }

    let mut index = json!({
        "name": pkg.name,
        "version": pkg.version,
        "build": pkg.build,
        "build_number": pkg.build_number,
        "depends": pkg.depends,
        "license": "BSD-3-Clause",
        "subdir": pkg.subdir,
        "timestamp": TIMESTAMP_MS,
    });
    if pkg.subdir == "linux-64" {
        index["arch"] = json!("x86_64");
        index["platform"] = json!("linux");
    }
    if pkg.subdir == "osx-arm64" {
        index["arch"] = json!("arm64");
        index["platform"] = json!("osx");
    }
    if !pkg.constrains.is_empty() {
        index["constrains"] = json!(pkg.constrains);
    }
    if pkg.noarch_python {
        index["noarch"] = json!("python");
    }
    if pkg.noarch_generic {
        assert!(
            !pkg.noarch_python && pkg.subdir == "noarch",
            "{}: noarch generic packages live in noarch/",
            pkg.name
        );
        index["noarch"] = json!("generic");
    }
    let mut info: Vec<(&str, Value)> = vec![
        ("info/index.json", index),
        (
            "info/paths.json",
            json!({ "paths": paths_json, "paths_version": 1 }),
        ),
        (
            "info/about.json",
            json!({ "summary": format!("{} (envmod test package)", pkg.name), "license": "BSD-3-Clause" }),
        ),
    ];
    if pkg.noarch_python {
        info.push((
            "info/link.json",
            json!({
                "noarch": { "type": "python", "entry_points": pkg.entry_points },
                "package_metadata_version": 1,
            }),
        ));
    }
    for (rel, value) in info {
        let text = serde_json::to_string_pretty(&value).unwrap();
        paths.push(write_file(stage, rel, text.as_bytes(), false));
    }
    paths.push(write_file(
        stage,
        "info/files",
        files_list.as_bytes(),
        false,
    ));

    let archive = fs::File::create(out).unwrap_or_else(|e| panic!("create {}: {e}", out.display()));
    // `paths` are absolute paths under `stage`; the writers strip the prefix. A `None`
    // timestamp means a fixed mtime (2023-01-01), so builds are reproducible.
    let written = match pkg.format {
        Format::Conda => rattler_package_streaming::write::write_conda_package(
            archive,
            stage,
            &paths,
            CompressionLevel::Lowest,
            Some(1),
            &pkg.stem(),
            None,
            None,
        ),
        Format::TarBz2 => rattler_package_streaming::write::write_tar_bz2_package(
            archive,
            stage,
            &paths,
            CompressionLevel::Lowest,
            None,
            None,
        ),
    };
    written.unwrap_or_else(|e| panic!("write {}: {e}", out.display()));
}

fn write_file(stage: &Path, rel: &str, contents: &[u8], executable: bool) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = stage.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    // The archive keeps only "executable or not" (tar's deterministic header mode).
    let mode = if executable { 0o755 } else { 0o644 };
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    p
}

/// Index the channel with rattler_index (plain repodata.json only). `index_fs` is async and
/// spawns tasks, so it gets its own runtime on its own thread: that works whether or not the
/// caller is already inside a tokio runtime.
fn index(dir: &Path) {
    let channel = dir.to_path_buf();
    let result = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(rattler_index::index_fs(rattler_index::IndexFsConfig {
            channel: channel.clone(),
            target_platform: None,
            repodata_patch: None,
            write_zst: false,
            write_shards: false,
            repodata_revisions: vec![],
            package_revision_assignment: Default::default(),
            force: true,
            max_parallel: 2,
            multi_progress: None,
        }))
        .map_err(|e| format!("indexing {}: {e:#}", channel.display()))
    })
    .join()
    .expect("indexing thread panicked");
    result.unwrap();
    // index_fs leaves its (empty) atomic-write directory behind; keep the channel tidy.
    let _ = fs::remove_dir(dir.join(".tmp"));
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    // rattler_digest 2 returns a hybrid_array `Array`, which has no `LowerHex`.
    let digest = rattler_digest::compute_bytes_digest::<rattler_digest::Sha256>(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Name of a match spec (`"alpha >=1"` → `"alpha"`).
fn spec_name(spec: &str) -> &str {
    spec.split([' ', '=', '<', '>', '!', '~'])
        .next()
        .unwrap_or("")
}

// ------------------------------------------------------------------------------------------
// What conda-forge has for MPI, CUDA and numpy, in its shapes (build strings, mutexes,
// `constrains`), for the tests of modules and the site Python standing in for packages.

/// Marker file every conda MPI package of [`mpi_packages`] ships, by implementation: its
/// presence in a prefix means that conda MPI was linked.
pub fn conda_mpi_marker(implementation: &str) -> String {
    format!("share/envmod-test/conda-{implementation}")
}

/// What the library (and `mpirun`) of a conda MPI package of [`mpi_packages`] prints to
/// stderr when something loads (runs) it, just before it exits with status 97.
pub fn conda_mpi_loaded(implementation: &str) -> String {
    format!("of the conda {implementation} package was used, not the site's MPI")
}

/// `mpi 1.0 <implementation>`: conda-forge's MPI mutex (noarch generic, build string = the
/// implementation). Every MPI provider depends on its own, so two MPIs cannot be installed
/// together.
pub fn mpi_mutex(implementation: &str) -> Pkg {
    Pkg::new("mpi", "1.0", implementation, "noarch").noarch_generic()
}

/// A conda MPI (`openmpi 4.1.6 h0_101`, `mpich 4.2.1 h0_101`) depending on its mutex. It
/// ships a real shared library `lib/<soname>` exporting `MPI_Get_version`, so mpi4py takes
/// it (it looks in the env's `lib/` first), whose constructor prints [`conda_mpi_loaded`]
/// and exits 97; a `bin/mpirun` (and `bin/mpiexec`) that does the same; and the marker
/// [`conda_mpi_marker`]. Nothing of it may be linked where a module provides the MPI.
///
/// The library is a real one because mpi4py passes over a file it cannot dlopen and goes on
/// to the system's: junk bytes would leave a shadowing conda MPI unnoticed.
fn conda_mpi(implementation: &str, version: &str, soname: &str) -> Pkg {
    let said = conda_mpi_loaded(implementation);
    let runner = format!("#!/bin/sh\necho \"envmod test: $0 {said}\" >&2\nexit 97\n");
    linux64(
        implementation,
        version,
        "h0_101",
        &["__glibc >=2.17", &format!("mpi 1.0 {implementation}")],
    )
    .with_build("h0_101", 101)
    .with_file(
        &format!("lib/{soname}"),
        fake_libmpi(soname, &format!("lib/{soname} {said}")),
    )
    .with_executable("bin/mpirun", &runner)
    .with_executable("bin/mpiexec", &runner)
    .with_file(
        &conda_mpi_marker(implementation),
        format!("conda {implementation} {version} (envmod test package)\n"),
    )
}

/// Conda's `openmpi 4.1.6 h0_101` (see [`conda_mpi`]): `lib/libmpi.so.40`.
pub fn conda_openmpi() -> Pkg {
    conda_mpi("openmpi", "4.1.6", "libmpi.so.40")
}

/// Conda's `mpich 4.2.1 h0_101` (see [`conda_mpi`]): `lib/libmpi.so.12`.
pub fn conda_mpich() -> Pkg {
    conda_mpi("mpich", "4.2.1", "libmpi.so.12")
}

/// A shared library with SONAME `soname` that exports `MPI_Get_version` and, when loaded,
/// prints `envmod test: <message>` to stderr and exits 97. Built with the system's `cc`
/// once per test process.
fn fake_libmpi(soname: &str, message: &str) -> Vec<u8> {
    use std::{collections::BTreeMap, sync::Mutex};
    static BUILT: Mutex<BTreeMap<(String, String), Vec<u8>>> = Mutex::new(BTreeMap::new());
    let key = (soname.to_string(), message.to_string());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(bytes) = built.get(&key) {
        return bytes.clone();
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let source = format!(
        "#include <stdio.h>\n#include <unistd.h>\n\
         __attribute__((constructor)) static void loaded(void) {{\n\
         \x20   fputs({msg:?}, stderr);\n    _exit(97);\n}}\n\
         int MPI_Get_version(int *version, int *subversion) {{ *version = 0; *subversion = 0; return 0; }}\n",
        msg = format!("envmod test: {message}\n"),
    );
    fs::write(dir.path().join("fake.c"), source).unwrap();
    let out = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O", "-s", "-o", soname])
        .arg(format!("-Wl,-soname,{soname}"))
        .arg("fake.c")
        .current_dir(dir.path())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run cc ({e}) to build the test channel's {soname}: apt-get install -y gcc libc6-dev (tests/provision.sh installs them)")
        });
    assert!(
        out.status.success(),
        "cc failed to build {soname}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = fs::read(dir.path().join(soname)).unwrap();
    built.insert(key, bytes.clone());
    bytes
}

/// `partool 1.0`, a package with MPI variants in conda-forge's style:
///
/// | build | build number | depends |
/// |---|---|---|
/// | `mpi_openmpi_h0_0` | 0 | `openmpi >=4.1.6,<5.0a0`, `mpi 1.0 openmpi` |
/// | `mpi_mpich_h0_0` | 0 | `mpich >=4.2,<5.0a0`, `mpi 1.0 mpich` |
/// | `nompi_h0_100` | 100 | (no MPI) |
///
/// As on conda-forge, the nompi build wins a plain `partool` by its build number; ask for
/// `partool=*=mpi_*` (or `=*=mpi_openmpi_*`) to get an MPI build.
pub fn partool_packages() -> Vec<Pkg> {
    let glibc = "__glibc >=2.17";
    vec![
        linux64(
            "partool",
            "1.0",
            "mpi_openmpi_h0_0",
            &[glibc, "openmpi >=4.1.6,<5.0a0", "mpi 1.0 openmpi"],
        )
        .with_file("share/partool/variant", "openmpi\n"),
        linux64(
            "partool",
            "1.0",
            "mpi_mpich_h0_0",
            &[glibc, "mpich >=4.2,<5.0a0", "mpi 1.0 mpich"],
        )
        .with_file("share/partool/variant", "mpich\n"),
        linux64("partool", "1.0", "nompi_h0_100", &[glibc])
            .with_build("nompi_h0_100", 100)
            .with_file("share/partool/variant", "nompi\n"),
    ]
}

/// The MPI side of conda-forge without mpi4py (see [`mpi4py_packages`]): the two `mpi`
/// mutexes, [`conda_openmpi`], [`conda_mpich`] and [`partool_packages`].
pub fn mpi_packages() -> Vec<Pkg> {
    let mut pkgs = vec![
        mpi_mutex("openmpi"),
        mpi_mutex("mpich"),
        conda_openmpi(),
        conda_mpich(),
    ];
    pkgs.extend(partool_packages());
    pkgs
}

/// A real wheel as a linux-64 conda package `name version build` (name and version from the
/// wheel's file name), its files under `lib/python<pyver>/site-packages/` with the wheel's
/// executable bits, depending on `depends`. This is how conda-forge's builds of compiled
/// Python packages are laid out.
pub fn from_wheel(whl: &Path, pyver: &str, build: &str, depends: &[&str]) -> Pkg {
    use std::io::Read;
    let stem = whl
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".whl"))
        .unwrap_or_else(|| panic!("{} is not a wheel", whl.display()));
    let mut parts = stem.split('-');
    let (Some(name), Some(version)) = (parts.next(), parts.next()) else {
        panic!("{}: not a wheel file name", whl.display())
    };
    let name = name.to_lowercase().replace('_', "-");
    let file = fs::File::open(whl).unwrap_or_else(|e| panic!("open {}: {e}", whl.display()));
    let mut zip =
        zip::ZipArchive::new(file).unwrap_or_else(|e| panic!("read {}: {e}", whl.display()));
    let mut pkg = linux64(&name, version, build, depends);
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).unwrap();
        if entry.is_dir() {
            continue;
        }
        let path = entry
            .enclosed_name()
            .unwrap_or_else(|| panic!("{}: unsafe member name", whl.display()));
        let executable = entry.unix_mode().is_some_and(|m| m & 0o111 != 0);
        let mut contents = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut contents).unwrap();
        let mut file = File::new(
            &format!("lib/python{pyver}/site-packages/{}", path.display()),
            contents,
        );
        file.executable = executable;
        pkg = pkg.with(file);
    }
    pkg
}

/// The real mpi4py (the wheel of [`super::mpi4py_wheel`], from PyPI) as conda-forge builds it
/// for Python 3.11, one build per MPI (the wheel serves both ABIs, picking `libmpi.so.40` or
/// `.12` at run time):
///
/// | build | depends |
/// |---|---|
/// | `mpi_openmpi_py311h0_0` | `python 3.11.*`, `openmpi >=4.1,<5`, `mpi 1.0 openmpi` |
/// | `mpi_mpich_py311h0_0` | `python 3.11.*`, `mpich >=4.2,<5`, `mpi 1.0 mpich` |
///
/// Debian's Open MPI 4.1.4 satisfies `openmpi >=4.1,<5` (a package needing 4.1.6 is
/// [`partool_packages`]'s openmpi build). For site envs on [`super::MODULE_PYTHON`].
pub fn mpi4py_packages() -> Vec<Pkg> {
    let whl = super::mpi4py_wheel();
    let glibc = "__glibc >=2.17";
    let openmpi = from_wheel(
        &whl,
        "3.11",
        "mpi_openmpi_py311h0_0",
        &[
            glibc,
            "python 3.11.*",
            "openmpi >=4.1,<5",
            "mpi 1.0 openmpi",
        ],
    );
    let mut mpich = openmpi.clone();
    mpich.build = "mpi_mpich_py311h0_0".to_string();
    mpich.depends = [
        "__glibc >=2.17",
        "python 3.11.*",
        "mpich >=4.2,<5",
        "mpi 1.0 mpich",
    ]
    .map(String::from)
    .to_vec();
    vec![openmpi, mpich]
}

/// Put the archives of [`mpi4py_packages`] into `dir/linux-64/`, unindexed. They are built
/// once per test process: the wheel is 4 MB of extension modules, which takes a debug build
/// of the archive writer about a second.
pub fn add_mpi4py(dir: &Path) {
    static BUILT: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = tempfile::tempdir().expect("tempdir");
        let stage = staging_dir();
        mpi4py_packages()
            .iter()
            .enumerate()
            .map(|(i, pkg)| {
                let archive = out.path().join(pkg.filename());
                build_package(pkg, &stage.path().join(i.to_string()), &archive);
                (
                    format!("{}/{}", pkg.subdir, pkg.filename()),
                    fs::read(&archive).unwrap(),
                )
            })
            .collect()
    });
    for (rel, bytes) in built {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).expect("create channel subdir");
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

/// The standard channel plus [`mpi_packages`] and [`mpi4py_packages`], in `dir`.
pub fn mpi_channel(dir: &Path) -> PathBuf {
    let mut pkgs = standard_packages();
    pkgs.extend(mpi_packages());
    add_mpi4py(dir);
    write_channel(dir, &pkgs);
    dir.to_path_buf()
}

/// conda-forge's CUDA 12 shapes:
///
/// | package | depends | constrains |
/// |---|---|---|
/// | noarch `cuda-version 12.0 / 12.2 / 12.4 h0_3` (noarch generic) | | `cudatoolkit X.Y\|X.Y.*`, `__cuda >=12` |
/// | `cuda-cudart 12.2.140 h0_0` | `cuda-version >=12.2,<12.3.0a0` | |
/// | `cuda-cudart 12.4.127 h0_0` | `cuda-version >=12.4,<12.5.0a0` | |
/// | `gputool 1.0 h0_0` | `__cuda`, `cuda-cudart >=12,<13`, `cuda-version >=12,<13` | |
///
/// With `__cuda 12.2` and nothing else, `gputool` gets cuda-version 12.4; without `__cuda`
/// (a login node) it does not solve.
pub fn cuda_packages() -> Vec<Pkg> {
    let glibc = "__glibc >=2.17";
    let mut pkgs: Vec<Pkg> = ["12.0", "12.2", "12.4"]
        .iter()
        .map(|v| {
            Pkg::new("cuda-version", v, "h0_3", "noarch")
                .noarch_generic()
                .with_build("h0_3", 3)
                .with_constrains(&[&format!("cudatoolkit {v}|{v}.*"), "__cuda >=12"])
        })
        .collect();
    for (version, range) in [
        ("12.2.140", "cuda-version >=12.2,<12.3.0a0"),
        ("12.4.127", "cuda-version >=12.4,<12.5.0a0"),
    ] {
        pkgs.push(
            linux64("cuda-cudart", version, "h0_0", &[glibc, range])
                .with_file("lib/libcudart.so.12", format!("fake cudart {version}\n")),
        );
    }
    pkgs.push(
        linux64(
            "gputool",
            "1.0",
            "h0_0",
            &[
                glibc,
                "__cuda",
                "cuda-cudart >=12,<13",
                "cuda-version >=12,<13",
            ],
        )
        .with_file("share/gputool/README", "needs a GPU\n"),
    );
    pkgs
}

/// The version of conda's numpy in [`numpy_packages`]; Debian's (python3-numpy, under
/// [`super::MODULE_PYTHON`]) is 1.24.2.
pub const CONDA_NUMPY_VERSION: &str = "2.2.6";

/// A fake conda `numpy 2.2.6 py311h0_0` for Python 3.11 (its `numpy/__init__.py` sets
/// `__version__ = "2.2.6"`), and two noarch users: `np-user 1.0` (`numpy >=1.20`, which
/// Debian's numpy satisfies) and `np2-user 1.0` (`numpy >=2`, which it does not).
pub fn numpy_packages() -> Vec<Pkg> {
    let v = CONDA_NUMPY_VERSION;
    let sp = "lib/python3.11/site-packages";
    vec![
        linux64(
            "numpy",
            v,
            "py311h0_0",
            &["__glibc >=2.17", "python >=3.11,<3.12.0a0"],
        )
        .with_file(
            &format!("{sp}/numpy/__init__.py"),
            format!("\"\"\"conda's numpy (envmod test package).\"\"\"\n__version__ = \"{v}\"\n"),
        )
        .with_file(
            &format!("{sp}/numpy-{v}.dist-info/METADATA"),
            format!("Metadata-Version: 2.1\nName: numpy\nVersion: {v}\n"),
        )
        .with_file(&format!("{sp}/numpy-{v}.dist-info/INSTALLER"), "conda\n"),
        noarch_python("np-user", "1.0", &["numpy >=1.20"]),
        noarch_python("np2-user", "1.0", &["numpy >=2"]),
    ]
}

/// Everything above in one channel: the standard packages, MPI with the real mpi4py, CUDA and
/// numpy, in `dir`.
pub fn provides_channel(dir: &Path) -> PathBuf {
    let mut pkgs = standard_packages();
    pkgs.extend(mpi_packages());
    pkgs.extend(cuda_packages());
    pkgs.extend(numpy_packages());
    add_mpi4py(dir);
    write_channel(dir, &pkgs);
    dir.to_path_buf()
}

/// conda-forge's BLAS variants, which `blas=*=mkl` selects and a constraint from an MKL
/// module (`libblas * *mkl`) can select too:
///
/// | package | depends |
/// |---|---|
/// | `libopenblas 0.3.27 pthreads_h0_0` | |
/// | `mkl 2024.2.2 h0_0` | |
/// | `libblas 3.9.0 21_linux64_openblas` (build number 21) | `libopenblas >=0.3.27,<1.0a0` |
/// | `libblas 3.9.0 20_linux64_mkl` (build number 20) | `mkl >=2024.2,<2025.0a0` |
/// | `blas 2.121 openblas`, `blas 2.120 mkl` | the matching `libblas` |
/// | `blasuser 1.0 h0_0` | `libblas >=3.9.0,<4.0a0` |
///
/// A plain `blasuser` gets OpenBLAS (the higher build number); only a request or a
/// constraint brings MKL.
pub fn blas_packages() -> Vec<Pkg> {
    let glibc = "__glibc >=2.17";
    vec![
        linux64("libopenblas", "0.3.27", "pthreads_h0_0", &[glibc])
            .with_file("lib/libopenblas.so.0", "fake OpenBLAS\n"),
        linux64("mkl", "2024.2.2", "h0_0", &[glibc]).with_file("lib/libmkl_rt.so.2", "fake MKL\n"),
        linux64(
            "libblas",
            "3.9.0",
            "21_linux64_openblas",
            &[glibc, "libopenblas >=0.3.27,<1.0a0"],
        )
        .with_build("21_linux64_openblas", 21)
        .with_constrains(&["blas * openblas"]),
        linux64(
            "libblas",
            "3.9.0",
            "20_linux64_mkl",
            &[glibc, "mkl >=2024.2,<2025.0a0"],
        )
        .with_build("20_linux64_mkl", 20)
        .with_constrains(&["blas * mkl"]),
        Pkg::new("blas", "2.121", "openblas", "linux-64")
            .with_depends(&["libblas 3.9.0 21_linux64_openblas"]),
        Pkg::new("blas", "2.120", "mkl", "linux-64")
            .with_depends(&["libblas 3.9.0 20_linux64_mkl"]),
        linux64(
            "blasuser",
            "1.0",
            "h0_0",
            &[glibc, "libblas >=3.9.0,<4.0a0"],
        )
        .with_file("share/blasuser/README", "needs a BLAS\n"),
    ]
}
