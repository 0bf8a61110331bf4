//! Hierarchical module trees as sites build them (Lmod's documentation, OpenHPC, Spack and
//! EasyBuild): `Core/` holds the compilers, Python and the sticky `StdEnv`; loading a
//! compiler adds its `Compiler/` directory to MODULEPATH, and loading an MPI there adds its
//! `MPI/` directory. Lmod reads the trees as Lua modulefiles, Environment Modules as Tcl
//! ones, so each module system gets the files its sites write.
//!
//! Site one (`Site::One`):
//!
//! | level | module | sets |
//! |---|---|---|
//! | Core | `StdEnv/2024` (sticky, loaded at login) | `SITE_STDENV` |
//! | Core | `gcc/12.2`, `gcc/13.1` (family `compiler`) | `FAKE_GCC_VERSION`, MODULEPATH += `Compiler/gcc/V` |
//! | Core | `python/3.11` | PATH to its own Python 3.11 install, [`PYTHON_PREFIX`] |
//! | Core | `intel/oneapi/2023.1` | `INTEL_ONEAPI_VERSION` |
//! | Compiler/gcc/12.2, Compiler/gcc/13.1 | `openmpi/4.1` (family `mpi`) | `FAKE_MPI_VERSION`, `FAKE_MPI_COMPILER`, MODULEPATH += `MPI/gcc/V/openmpi/4.1` |
//! | MPI/gcc/12.2/openmpi/4.1 | `hdf5/1.14` | `HDF5_DIR` |
//! | MPI/gcc/12.2/openmpi/4.1, MPI/gcc/13.1/openmpi/4.1 | `py-mpi4py/3.1` | PYTHONPATH += its site-packages |
//!
//! `hdf5/1.14` exists only under gcc/12.2, so a swap to gcc/13.1 leaves it without a build.
//!
//! Site two (`Site::Two`), another site with other versions: `StdEnv/2024`, `gcc/12.3`,
//! `python/3.11`, `openmpi/4.1.6` under gcc/12.3 and `hdf5/1.14.3` under that MPI.

use std::path::{Path, PathBuf};

use super::{MODULE_PYTHON, Ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    One,
    Two,
}

/// One modulefile of a tree, as data both writers read.
struct Module {
    /// Relative to the site's root: `Core/gcc/12.2`.
    path: String,
    family: Option<&'static str>,
    setenv: Vec<(&'static str, String)>,
    prepend: Vec<(&'static str, String)>,
    sticky: bool,
}

impl Module {
    fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            family: None,
            setenv: Vec::new(),
            prepend: Vec::new(),
            sticky: false,
        }
    }
    fn family(mut self, f: &'static str) -> Self {
        self.family = Some(f);
        self
    }
    fn set(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.setenv.push((k, v.into()));
        self
    }
    fn prepend(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.prepend.push((k, v.into()));
        self
    }
}

fn modules(site: Site, root: &Path) -> Vec<Module> {
    let at = |p: &str| root.join(p).display().to_string();
    let mut m = vec![
        {
            let mut s = Module::new("Core/StdEnv/2024").set("SITE_STDENV", "2024");
            s.sticky = true;
            s
        },
        Module::new("Core/python/3.11").prepend("PATH", at(&format!("{PYTHON_PREFIX}/bin"))),
    ];
    let (compilers, mpi, hdf5): (&[&str], &str, &[(&str, &str)]) = match site {
        Site::One => (&["12.2", "13.1"], "4.1", &[("12.2", "1.14")]),
        Site::Two => (&["12.3"], "4.1.6", &[("12.3", "1.14.3")]),
    };
    for gcc in compilers {
        m.push(
            Module::new(format!("Core/gcc/{gcc}"))
                .family("compiler")
                .set("FAKE_GCC_VERSION", *gcc)
                .prepend("MODULEPATH", at(&format!("Compiler/gcc/{gcc}"))),
        );
        m.push(
            Module::new(format!("Compiler/gcc/{gcc}/openmpi/{mpi}"))
                .family("mpi")
                .set("FAKE_MPI_VERSION", mpi)
                .set("FAKE_MPI_COMPILER", format!("gcc-{gcc}"))
                .prepend("MODULEPATH", at(&format!("MPI/gcc/{gcc}/openmpi/{mpi}"))),
        );
        if site == Site::One {
            m.push(
                Module::new(format!("MPI/gcc/{gcc}/openmpi/{mpi}/py-mpi4py/3.1")).prepend(
                    "PYTHONPATH",
                    format!("/opt/site/gcc-{gcc}/py-mpi4py/3.1/lib/python3.11/site-packages"),
                ),
            );
        }
    }
    for (gcc, version) in hdf5 {
        m.push(
            Module::new(format!("MPI/gcc/{gcc}/openmpi/{mpi}/hdf5/{version}"))
                .set("HDF5_DIR", format!("/opt/site/gcc-{gcc}/hdf5/{version}")),
        );
    }
    if site == Site::One {
        m.push(Module::new("Core/intel/oneapi/2023.1").set("INTEL_ONEAPI_VERSION", "2023.1"));
    }
    m
}

/// Where in a site's tree the `python/3.11` module's Python lives: a copy of
/// [`MODULE_PYTHON`] with the standard library beside it, an install of its own as a site's
/// Python module is, so `sys.executable` tells it from /usr/bin's.
pub const PYTHON_PREFIX: &str = "_python";

fn write_site_python(prefix: &Path) {
    let bin = prefix.join("bin");
    let lib = prefix.join("lib");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::copy(MODULE_PYTHON, bin.join("python3.11")).unwrap();
    for name in ["python3", "python"] {
        std::os::unix::fs::symlink("python3.11", bin.join(name)).unwrap();
    }
    // Debian's standard library and its dist-packages, found from the prefix.
    std::os::unix::fs::symlink("/usr/lib/python3.11", lib.join("python3.11")).unwrap();
    std::os::unix::fs::symlink("/usr/lib/python3", lib.join("python3")).unwrap();
}

fn lua(s: &str) -> String {
    format!("{s:?}")
}

fn tcl(s: &str) -> String {
    format!("{{{s}}}")
}

/// Write site `site`'s tree for `ms` under `root` (once) and return its `Core` directory,
/// the only entry of MODULEPATH at login.
pub fn write_tree(root: &Path, ms: Ms, site: Site) -> PathBuf {
    let root = root.join(format!("{}-{site:?}", ms.flag()));
    let core = root.join("Core");
    if core.is_dir() {
        return core;
    }
    write_site_python(&root.join(PYTHON_PREFIX));
    let mut sticky = Vec::new();
    for m in modules(site, &root) {
        let name = m
            .path
            .split_once('/')
            .map_or(m.path.as_str(), |x| x.1)
            .to_string();
        let text = match ms {
            Ms::Lmod => {
                let mut t = format!("whatis({})\n", lua(&format!("{name} (site test tree)")));
                if let Some(f) = m.family {
                    t += &format!("family({})\n", lua(f));
                }
                for (k, v) in &m.setenv {
                    t += &format!("setenv({}, {})\n", lua(k), lua(v));
                }
                for (k, v) in &m.prepend {
                    t += &format!("prepend_path({}, {})\n", lua(k), lua(v));
                }
                if m.sticky {
                    t += "add_property(\"lmod\", \"sticky\")\n";
                }
                t
            }
            Ms::Tcl => {
                let mut t = format!(
                    "#%Module1.0\nmodule-whatis {}\n",
                    tcl(&format!("{name} (site test tree)"))
                );
                if let Some(f) = m.family {
                    t += &format!("family {f}\n");
                }
                for (k, v) in &m.setenv {
                    t += &format!("setenv {k} {}\n", tcl(v));
                }
                for (k, v) in &m.prepend {
                    t += &format!("prepend-path {k} {}\n", tcl(v));
                }
                t
            }
        };
        if m.sticky {
            // The name below Core: `StdEnv/2024`.
            sticky.push(m.path.trim_start_matches("Core/").to_string());
        }
        let file = match ms {
            Ms::Lmod => root.join(format!("{}.lua", m.path)),
            Ms::Tcl => root.join(&m.path),
        };
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
    if ms == Ms::Tcl && !sticky.is_empty() {
        let rc: String = sticky
            .iter()
            .map(|s| format!("module-tag sticky {s}\n"))
            .collect();
        std::fs::write(core.join(".modulerc"), format!("#%Module1.0\n{rc}")).unwrap();
    }
    core
}
