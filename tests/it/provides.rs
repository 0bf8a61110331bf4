//! The site's modules and Python standing in for conda packages: Debian's real Open MPI under
//! the real mpi4py, conda-forge's MPI variants and mutex, CUDA's `__cuda` and `cuda-version`,
//! and Debian's numpy under the site Python.
//!
//! The `fixtures_*` tests check the parts themselves (the test channel, the test modules, the
//! provisioned MPI and numpy) where no module enters the solve, so a failure there points at
//! the machine or the fixtures rather than at envmod. The other tests load the modules and
//! build envs as a user would, all on one channel built once per test process.

use crate::common;

use std::path::{Path, PathBuf};

use common::{MODULE_PYTHON, Ms, TestEnv, channel, ok, sh, stderr, stdout};

fn prefix(t: &TestEnv, name: &str) -> PathBuf {
    t.envs_dir().join(name)
}

/// The `name-version-build` of every record in the env's conda-meta, sorted.
fn conda_meta(t: &TestEnv, name: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(prefix(t, name).join("conda-meta"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(".json")
                .map(String::from)
        })
        .collect();
    names.sort();
    names
}

/// Delete by hand every file conda-meta says the package `name` linked into `prefix`.
fn unlink_by_hand(prefix: &Path, name: &str) {
    let meta = std::fs::read_dir(prefix.join("conda-meta"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{name}-")) && n.ends_with(".json"))
        })
        .unwrap_or_else(|| panic!("no {name} in {}/conda-meta", prefix.display()));
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let files = record["files"].as_array().expect("conda-meta lists files");
    assert!(!files.is_empty(), "{}: no files", meta.display());
    for f in files {
        std::fs::remove_file(prefix.join(f.as_str().unwrap())).unwrap();
    }
    std::fs::remove_file(meta).unwrap();
}

/// The test channel's conda openmpi is real enough to shadow the site's MPI (mpi4py takes the
/// env's `lib/libmpi.so.40` first), and the real mpi4py from PyPI, repackaged as a conda
/// package, runs on Debian's Open MPI under `mpirun` once that library is gone.
#[test]
fn fixtures_real_mpi4py_runs_on_debian_open_mpi() {
    let dir = tempfile::tempdir().unwrap();
    let chan = channel::mpi_channel(dir.path());
    for ms in Ms::BOTH {
        let t = TestEnv::new();
        t.set_site_config(&format!("channels: [{}]\n", chan.display()));
        // No module is loaded: conda's MPI comes with mpi4py, with or without stand-ins.
        ok(&t.module_shell(
            ms,
            &format!("envmod create -n m --site-python {MODULE_PYTHON} 'mpi4py=*=mpi_openmpi_*'"),
        ));
        let meta = conda_meta(&t, "m");
        for want in [
            "mpi4py-4.1.2-mpi_openmpi_py311h0_0",
            "openmpi-4.1.6-h0_101",
            "mpi-1.0-openmpi",
        ] {
            assert!(
                meta.iter().any(|m| m == want),
                "{ms:?}: no {want}: {meta:?}"
            );
        }
        let p = prefix(&t, "m");
        assert!(p.join("lib/libmpi.so.40").is_file(), "{ms:?}");
        assert!(
            p.join(channel::conda_mpi_marker("openmpi")).is_file(),
            "{ms:?}"
        );

        let load = format!(
            "module load openmpi/4.1.4 || exit 8\nmodule use {}\nmodule load m/py3.11 || exit 9\n",
            sh(&t.module_root().display().to_string())
        );
        let out = t.module_shell(
            ms,
            &format!(
                "{load}python -c 'import mpi4py; print(mpi4py.__version__, mpi4py.__file__)' || exit 10\n\
                 python -c 'from mpi4py import MPI'; echo \"import: $?\"\n\
                 mpirun -np 1 true; echo \"mpirun: $?\""
            ),
        );
        let text = ok(&out);
        let err = stderr(&out);
        let site_packages = p.join("lib/python3.11/site-packages/mpi4py/__init__.py");
        assert!(
            text.contains(&format!("4.1.2 {}", site_packages.display())),
            "{ms:?}: mpi4py is not the env's: {text}"
        );
        // The conda library and mpirun were taken over the site's, and said so.
        assert!(text.contains("import: 97"), "{ms:?}: {text}\n{err}");
        assert!(text.contains("mpirun: 97"), "{ms:?}: {text}\n{err}");
        assert!(
            err.contains(&format!(
                "lib/libmpi.so.40 {}",
                channel::conda_mpi_loaded("openmpi")
            )),
            "{ms:?}: {err}"
        );
        assert!(
            err.contains(&format!(
                "bin/mpirun {}",
                channel::conda_mpi_loaded("openmpi")
            )),
            "{ms:?}: {err}"
        );

        // What the env holds once no conda openmpi is linked: the site's MPI on both ranks.
        unlink_by_hand(&p, "openmpi");
        assert!(!p.join("lib/libmpi.so.40").exists());
        let out = t.module_shell(
            ms,
            &format!(
                "{load}command -v mpirun\n\
                 timeout 60 mpirun -np 2 python -c 'from mpi4py import MPI; c = MPI.COMM_WORLD; \
                 print(\"rank\", c.Get_rank(), c.Get_size(), MPI.__file__, MPI.Get_library_version().splitlines()[0])'"
            ),
        );
        let text = ok(&out);
        assert!(text.starts_with("/usr/bin/mpirun\n"), "{ms:?}: {text}");
        let mut ranks: Vec<&str> = text.lines().filter(|l| l.starts_with("rank ")).collect();
        ranks.sort();
        assert_eq!(ranks.len(), 2, "{ms:?}: {text}\n{}", stderr(&out));
        let ext = p.join(
            "lib/python3.11/site-packages/mpi4py/MPI.openmpi.cpython-311-x86_64-linux-gnu.so",
        );
        for (rank, line) in ranks.iter().enumerate() {
            assert!(
                line.starts_with(&format!(
                    "rank {rank} 2 {} Open MPI v4.1.4, package: Debian OpenMPI",
                    ext.display()
                )),
                "{ms:?}: {line}"
            );
        }
    }
}

/// The CUDA packages solve as conda-forge's do where no module is involved: `gputool` needs
/// `__cuda`, gets the newest `cuda-version` its `__cuda` allows, and `cuda-version`'s
/// `constrains` hold.
#[test]
fn fixtures_cuda_packages_need_cuda() {
    let t = TestEnv::with_channel_of(channel::cuda_packages());
    let create = |name: &str, cuda: &str, specs: &[&str]| {
        let mut cmd = t.envmod();
        cmd.env("CONDA_OVERRIDE_CUDA", cuda)
            .args(["create", "-n", name, "--site-python", MODULE_PYTHON])
            .args(specs);
        cmd.output().unwrap()
    };

    // A login node: no driver, so no __cuda (the empty override says so on any machine).
    let out = create("none", "", &["gputool"]);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("__cuda"), "{}", stderr(&out));
    assert!(!prefix(&t, "none").exists());

    ok(&create("c", "12.2", &["gputool"]));
    let meta = conda_meta(&t, "c");
    for want in [
        "gputool-1.0-h0_0",
        "cuda-cudart-12.4.127-h0_0",
        "cuda-version-12.4-h0_3",
    ] {
        assert!(meta.iter().any(|m| m == want), "no {want}: {meta:?}");
    }

    ok(&create("c22", "12.2", &["gputool", "cuda-version=12.2"]));
    let meta = conda_meta(&t, "c22");
    assert!(
        meta.iter().any(|m| m == "cuda-cudart-12.2.140-h0_0"),
        "{meta:?}"
    );

    // cuda-version constrains __cuda >=12.
    let out = create("old", "11.8", &["cuda-version=12.2"]);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("__cuda"), "{}", stderr(&out));
}

/// Debian's numpy is under the site Python, and the channel's conda numpy 2.2.6 shadows it in
/// an env that needs numpy >=2.
#[test]
fn fixtures_numpy_site_and_conda() {
    let probe = "import numpy; print(numpy.__version__, numpy.__file__)";
    let site = ok(&std::process::Command::new(MODULE_PYTHON)
        .args(["-c", probe])
        .output()
        .unwrap());
    assert_eq!(
        site.trim(),
        "1.24.2 /usr/lib/python3/dist-packages/numpy/__init__.py",
        "Debian's numpy: apt-get install -y python3-numpy (tests/provision.sh)"
    );

    let t = TestEnv::with_channel_of(channel::numpy_packages());
    ok(&t.run(&[
        "create",
        "-n",
        "s2",
        "--site-python",
        MODULE_PYTHON,
        "np2-user",
    ]));
    let meta = conda_meta(&t, "s2");
    assert!(
        meta.iter().any(|m| m == "numpy-2.2.6-py311h0_0"),
        "{meta:?}"
    );
    let p = prefix(&t, "s2");
    let env = ok(&std::process::Command::new(p.join("bin/python"))
        .args(["-c", &format!("import np2_user; {probe}")])
        .output()
        .unwrap());
    assert_eq!(
        env.trim(),
        format!(
            "2.2.6 {}",
            p.join("lib/python3.11/site-packages/numpy/__init__.py")
                .display()
        )
    );
}

/// The site modules for MPI, CUDA and MKL load in both module systems, under the names
/// EasyBuild and RHEL give them, and set what they stand for.
#[test]
fn fixtures_site_modules_load_in_both_systems() {
    let t = TestEnv::new();
    let show = "echo \"L=$LOADEDMODULES\"; echo \"M=${MPI_HOME:-}|${EBVERSIONOPENMPI:-}|${MPI_COMPILER:-}\"; echo \"C=${CUDA_HOME:-}|${MKLROOT:-}|${OMPI_ALLOW_RUN_AS_ROOT:-}\"";
    for ms in Ms::BOTH {
        let out = t.module_shell(
            ms,
            &format!(
                "module load openmpi/4.1.4 OpenMPI/4.1.6-GCC-12.3.0 cuda/12.2 mkl/2024 || exit 8\n{show}\n\
                 module purge\nmodule load openmpi/4.1.6 CUDA/12.2.0 || exit 9\n{show}\n\
                 module purge\nmodule load mpi/openmpi-x86_64 || exit 10\n{show}"
            ),
        );
        let text = ok(&out);
        let expected = format!(
            "L=openmpi/4.1.4:OpenMPI/4.1.6-GCC-12.3.0:cuda/12.2:mkl/2024\n\
             M={}|4.1.6|\n\
             C=/opt/site/cuda/12.2|/opt/site/intel/mkl/2024|1\n\
             L=openmpi/4.1.6:CUDA/12.2.0\n\
             M=/opt/site/openmpi/4.1.6||\n\
             C=/opt/site/cuda/12.2.0||1\n\
             L=mpi/openmpi-x86_64\n\
             M=/usr/lib64/openmpi||openmpi-x86_64\n\
             C=||1\n",
            common::DEBIAN_OPENMPI
        );
        assert_eq!(text, expected, "{ms:?}\n{}", stderr(&out));
    }
}

/// conda-forge's MPI variants solve as there where no module is involved: the nompi build wins
/// a plain request, an MPI build brings its conda MPI and mutex, and the mutex keeps two MPIs
/// apart.
#[test]
fn fixtures_mpi_variants_and_mutex() {
    let t = TestEnv::with_channel_of(channel::mpi_packages());
    let create = |name: &str, specs: &[&str]| {
        t.envmod()
            .args(["create", "-n", name, "--site-python", MODULE_PYTHON])
            .args(specs)
            .output()
            .unwrap()
    };

    ok(&create("plain", &["partool"]));
    let meta = conda_meta(&t, "plain");
    assert!(
        meta.contains(&"partool-1.0-nompi_h0_100".to_string()),
        "{meta:?}"
    );
    assert!(!meta.iter().any(|m| m.starts_with("mpi")), "{meta:?}");

    ok(&create("mpich", &["partool=*=mpi_mpich_*"]));
    let meta = conda_meta(&t, "mpich");
    for want in [
        "partool-1.0-mpi_mpich_h0_0",
        "mpich-4.2.1-h0_101",
        "mpi-1.0-mpich",
    ] {
        assert!(meta.iter().any(|m| m == want), "no {want}: {meta:?}");
    }
    let p = prefix(&t, "mpich");
    assert!(p.join("lib/libmpi.so.12").is_file());
    assert!(p.join(channel::conda_mpi_marker("mpich")).is_file());
    assert!(!p.join("lib/libmpi.so.40").exists());

    let out = create("both", &["partool=*=mpi_openmpi_*", "mpich"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "two MPIs solved: {err}");
    assert!(
        err.contains("mpi ==1.0 openmpi") && err.contains("mpi ==1.0 mpich"),
        "{err}"
    );
    assert!(!prefix(&t, "both").exists());
}

// ------------------------------------------------------------------------------------------
// The behaviour: loaded modules and the site Python enter the solve.

/// One channel for every test below, built once per test process: the standard packages,
/// conda-forge's MPI shapes with the real mpi4py, CUDA, numpy and BLAS. It sits in the target
/// dir's tmp, named by the process; channels of processes that have ended are removed first.
fn shared_channel() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let stem = "provides-channel-";
        if let Ok(entries) = std::fs::read_dir(tmp) {
            for e in entries.filter_map(|e| e.ok()) {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix(stem)
                    && !Path::new("/proc").join(pid).exists()
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = tmp.join(format!("{stem}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut pkgs = channel::standard_packages();
        pkgs.extend(channel::mpi_packages());
        pkgs.extend(channel::cuda_packages());
        pkgs.extend(channel::numpy_packages());
        pkgs.extend(channel::blas_packages());
        channel::add_mpi4py(&dir);
        channel::write_channel(&dir, &pkgs);
        dir
    })
}

/// Run `envmod ARGS` in a module shell of `ms` after `module load MODULES`.
fn with_modules(t: &TestEnv, ms: Ms, modules: &str, args: &[&str]) -> std::process::Output {
    with_modules_env(t, ms, modules, args, &[])
}

fn with_modules_env(
    t: &TestEnv,
    ms: Ms,
    modules: &str,
    args: &[&str],
    vars: &[(&str, &str)],
) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| sh(a)).collect();
    t.module_shell_with(
        ms,
        &format!("module load {modules} || exit 8\nenvmod {}", args.join(" ")),
        vars,
    )
}

/// The env's manifest.
fn manifest(t: &TestEnv, name: &str) -> serde_json::Value {
    let path = prefix(t, name).join(".envmod/manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The `lib/libmpi*` files of the env: what a conda MPI links.
fn libmpi(t: &TestEnv, name: &str) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(prefix(t, name).join("lib"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("libmpi"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The records of conda-meta named `name` (any version and build).
fn records_of<'a>(meta: &'a [String], name: &str) -> Vec<&'a str> {
    meta.iter()
        .map(String::as_str)
        .filter(|m| {
            m.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|rest| rest.split('-').count() == 2)
        })
        .collect()
}

/// Nothing of the env `name` was left behind: no prefix and no modulefile.
#[track_caller]
fn nothing_created(t: &TestEnv, name: &str) {
    assert!(!prefix(t, name).exists(), "{name} was created");
    assert!(
        !t.module_root().join(name).exists(),
        "a modulefile for {name} was written"
    );
}

/// `mpirun -np 2` of the env's Python with mpi4py, in a new shell that loads only the env's
/// module: each rank's number and the first line of the MPI library's version, sorted.
fn ranks(t: &TestEnv, ms: Ms, name: &str) -> (Vec<String>, String) {
    let script = format!(
        "module use {}\nmodule load {name}/py3.11 || exit 9\n\
         timeout 60 mpirun -np 2 python -c 'from mpi4py import MPI; \
         print(MPI.COMM_WORLD.Get_rank(), MPI.Get_library_version().splitlines()[0])'\n\
         echo \"mpirun: $?\" >&2",
        sh(&t.module_root().display().to_string())
    );
    let out = t.module_shell(ms, &script);
    let mut lines: Vec<String> = stdout(&out)
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .map(String::from)
        .collect();
    lines.sort();
    (lines, format!("{}\n{}", stdout(&out), stderr(&out)))
}

/// With Debian's Open MPI loaded as a module, `create mpi4py` installs no conda MPI,
/// says which module stands in, and the env's mpi4py runs on the site's Open MPI on both ranks
/// in a new shell that loads the env's module.
#[test]
fn the_site_open_mpi_module_stands_in_and_mpi4py_runs_on_it() {
    for ms in Ms::BOTH {
        let t = TestEnv::on_channel(shared_channel(), "");
        let out = with_modules(&t, ms, "openmpi/4.1.4", &["create", "-n", "m", "mpi4py"]);
        ok(&out);
        let err = stderr(&out);

        let (lines, all) = ranks(&t, ms, "m");
        assert_eq!(lines.len(), 2, "{ms:?}: not two ranks:\n{all}");
        for (rank, line) in lines.iter().enumerate() {
            assert!(
                line.starts_with(&format!("{rank} Open MPI v4.1.4, package: Debian OpenMPI")),
                "{ms:?}: rank {rank} did not run on Debian's Open MPI:\n{all}"
            );
        }

        assert!(
            err.contains("openmpi 4.1.4 ← module openmpi/4.1.4"),
            "{ms:?}: {err}"
        );
        let meta = conda_meta(&t, "m");
        assert!(
            meta.iter()
                .any(|m| m == "mpi4py-4.1.2-mpi_openmpi_py311h0_0"),
            "{ms:?}: {meta:?}"
        );
        for name in ["openmpi", "mpich", "mpi"] {
            assert!(
                records_of(&meta, name).is_empty(),
                "{ms:?}: a record of the stand-in or a conda MPI in conda-meta: {meta:?}"
            );
        }
        assert_eq!(libmpi(&t, "m"), Vec::<String>::new(), "{ms:?}");
    }
}

/// conda-forge's MPI variants with an Open MPI module under its plain and its
/// EasyBuild name: the openmpi build is chosen, and no MPI package is linked; the manifest
/// records what the module provided.
#[test]
fn an_open_mpi_module_picks_the_openmpi_build_and_links_no_mpi() {
    let t = TestEnv::on_channel(shared_channel(), "");
    for (ms, module, name) in [
        (Ms::Lmod, "openmpi/4.1.6", "v"),
        (Ms::Tcl, "OpenMPI/4.1.6-GCC-12.3.0", "eb"),
    ] {
        let out = with_modules(&t, ms, module, &["create", "-n", name, "partool=*=mpi_*"]);
        ok(&out);
        let err = stderr(&out);
        assert!(
            err.contains(&format!("openmpi 4.1.6 ← module {module}")),
            "{module}: {err}"
        );
        let meta = conda_meta(&t, name);
        assert!(
            meta.iter().any(|m| m == "partool-1.0-mpi_openmpi_h0_0"),
            "{module}: {meta:?}"
        );
        for mpi in ["openmpi", "mpich", "mpi"] {
            assert!(records_of(&meta, mpi).is_empty(), "{module}: {meta:?}");
        }
        assert_eq!(libmpi(&t, name), Vec::<String>::new(), "{module}");
        assert_eq!(
            manifest(&t, name)["provided"]["modules"],
            serde_json::json!([{
                "module": module,
                "rule": "openmpi/*",
                "provides": ["openmpi 4.1.6", "mpi 1.0 openmpi"],
            }]),
            "{module}"
        );
    }
}

/// Nothing changes without a module that matches a rule: conda's MPI is installed,
/// one of them, with its mutex.
#[test]
fn without_an_mpi_module_conda_mpi_is_installed() {
    let t = TestEnv::on_channel(shared_channel(), "");
    ok(&with_modules(
        &t,
        Ms::Lmod,
        "gcc/12.2",
        &["create", "-n", "c", "partool=*=mpi_*"],
    ));
    let meta = conda_meta(&t, "c");
    let libs = libmpi(&t, "c");
    let which = match libs.as_slice() {
        [one] if one == "libmpi.so.40" => "openmpi",
        [one] if one == "libmpi.so.12" => "mpich",
        _ => panic!("not exactly one conda MPI library: {libs:?}, {meta:?}"),
    };
    for want in [
        format!("partool-1.0-mpi_{which}_h0_0"),
        format!("mpi-1.0-{which}"),
    ] {
        assert!(meta.contains(&want), "no {want}: {meta:?}");
    }
    assert_eq!(records_of(&meta, which).len(), 1, "{meta:?}");
    assert!(
        prefix(&t, "c")
            .join(channel::conda_mpi_marker(which))
            .is_file()
    );
}

/// The `mpi` mutex holds with the stand-ins: an mpich build with an Open MPI module
/// loaded is refused, and the hint names the module.
#[test]
fn an_mpich_build_under_an_open_mpi_module_is_refused_naming_the_module() {
    let t = TestEnv::on_channel(shared_channel(), "");
    let out = with_modules(
        &t,
        Ms::Lmod,
        "openmpi/4.1.6",
        &["create", "-n", "mm", "partool=*=mpi_mpich_*"],
    );
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "conda's mpich beside the module: {err}"
    );
    assert!(err.contains("module openmpi/4.1.6"), "{err}");
    nothing_created(&t, "mm");
}

/// Variants keep working with the stand-ins in place: `blas=*=mkl` beside an Open MPI
/// module, and an MKL module whose rule gives the constraint `libblas * *mkl`.
#[test]
fn blas_variants_work_beside_stand_ins_and_from_an_mkl_rule() {
    let t = TestEnv::on_channel(
        shared_channel(),
        "module_provides:\n  \"mkl/*\": [\"libblas * *mkl\"]\n",
    );
    let libblas = |name: &str| -> Vec<String> {
        records_of(&conda_meta(&t, name), "libblas")
            .into_iter()
            .map(String::from)
            .collect()
    };
    // No module: OpenBLAS, by its build number.
    ok(&t.run(&["create", "-n", "plain", "blasuser"]));
    assert_eq!(libblas("plain"), ["libblas-3.9.0-21_linux64_openblas"]);

    let out = with_modules(
        &t,
        Ms::Lmod,
        "openmpi/4.1.6",
        &[
            "create",
            "-n",
            "req",
            "blasuser",
            "blas=*=mkl",
            "partool=*=mpi_*",
        ],
    );
    ok(&out);
    assert_eq!(libblas("req"), ["libblas-3.9.0-20_linux64_mkl"]);
    let meta = conda_meta(&t, "req");
    assert!(
        meta.contains(&"partool-1.0-mpi_openmpi_h0_0".to_string()),
        "{meta:?}"
    );
    assert!(
        stderr(&out).contains("openmpi 4.1.6 ← module openmpi/4.1.6"),
        "{}",
        stderr(&out)
    );

    let out = with_modules(
        &t,
        Ms::Tcl,
        "mkl/2024",
        &["create", "-n", "mkl", "blasuser"],
    );
    ok(&out);
    assert_eq!(libblas("mkl"), ["libblas-3.9.0-20_linux64_mkl"]);
    let err = stderr(&out);
    assert!(
        err.lines()
            .any(|l| l.contains("libblas") && l.contains("← module mkl/2024")),
        "{err}"
    );
}

/// On this machine, which has no CUDA driver (a login node), a CUDA module gives
/// `__cuda` and pins `cuda-version` to its own; a later install and remove in a shell without
/// the module keep both.
#[test]
fn a_cuda_module_gives_cuda_on_a_login_node_and_the_env_keeps_it() {
    let driver = ["/dev/nvidiactl", "/proc/driver/nvidia"];
    assert!(
        !driver.iter().any(|p| Path::new(p).exists()),
        "this test needs a machine with no CUDA driver ({driver:?} exist)"
    );
    let t = TestEnv::on_channel(shared_channel(), "");
    for (ms, module, cuda, name) in [
        (Ms::Lmod, "cuda/12.2", "12.2", "c"),
        (Ms::Tcl, "CUDA/12.2.0", "12.2.0", "c2"),
    ] {
        let out = with_modules(&t, ms, module, &["create", "-n", name, "gputool"]);
        ok(&out);
        let err = stderr(&out);
        for line in [
            format!("__cuda {cuda} ← module {module} (no CUDA driver here)"),
            format!("cuda-version 12.2.* ← module {module}"),
        ] {
            assert!(err.contains(&line), "{module}: no {line:?}: {err}");
        }
        let meta = conda_meta(&t, name);
        for want in [
            "gputool-1.0-h0_0",
            "cuda-version-12.2-h0_3",
            "cuda-cudart-12.2.140-h0_0",
        ] {
            assert!(
                meta.iter().any(|m| m == want),
                "{module}: no {want}: {meta:?}"
            );
        }
    }
    assert_eq!(
        manifest(&t, "c")["provided"]["modules"],
        serde_json::json!([{
            "module": "cuda/12.2",
            "rule": "cuda/*",
            "provides": ["__cuda 12.2", "cuda-version 12.2.*"],
        }])
    );

    // No module system at all now: the manifest's stand-ins are applied again.
    ok(&t.run(&["install", "-n", "c", "alpha"]));
    let meta = conda_meta(&t, "c");
    for want in ["cuda-version-12.2-h0_3", "cuda-cudart-12.2.140-h0_0"] {
        assert!(meta.iter().any(|m| m == want), "no {want}: {meta:?}");
    }
    assert!(meta.iter().any(|m| m.starts_with("alpha-2.0-")), "{meta:?}");
    ok(&t.run(&["remove", "-n", "c", "alpha"]));
    let meta = conda_meta(&t, "c");
    assert!(records_of(&meta, "alpha").is_empty(), "{meta:?}");
    for want in ["cuda-version-12.2-h0_3", "cuda-cudart-12.2.140-h0_0"] {
        assert!(meta.iter().any(|m| m == want), "no {want}: {meta:?}");
    }
}

/// `CONDA_OVERRIDE_CUDA` wins over the module's `__cuda`, even set empty (no `__cuda`);
/// the module's `cuda-version` still pins the toolkit.
#[test]
fn conda_override_cuda_wins_over_the_module() {
    let t = TestEnv::on_channel(shared_channel(), "");
    let out = with_modules_env(
        &t,
        Ms::Lmod,
        "cuda/12.2",
        &["-v", "create", "-n", "o", "gputool"],
        &[("CONDA_OVERRIDE_CUDA", "12.4")],
    );
    ok(&out);
    let err = stderr(&out);
    assert!(
        !err.contains("__cuda 12.2 ← module cuda/12.2"),
        "the module's __cuda was used: {err}"
    );
    assert!(
        err.lines()
            .any(|l| l.contains("__cuda") && l.contains("12.4")),
        "-v does not show __cuda 12.4: {err}"
    );
    let meta = conda_meta(&t, "o");
    assert!(
        meta.iter().any(|m| m == "cuda-version-12.2-h0_3"),
        "{meta:?}"
    );

    let out = with_modules_env(
        &t,
        Ms::Lmod,
        "cuda/12.2",
        &["create", "-n", "e", "gputool"],
        &[("CONDA_OVERRIDE_CUDA", "")],
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "solved without __cuda: {err}");
    assert!(err.contains("__cuda"), "{err}");
    nothing_created(&t, "e");
}

/// `import numpy` in the env's Python: its version and file.
fn env_numpy(t: &TestEnv, name: &str) -> String {
    let out = std::process::Command::new(prefix(t, name).join("bin/python"))
        .args([
            "-c",
            "import numpy; print(numpy.__version__, numpy.__file__)",
        ])
        .output()
        .unwrap();
    ok(&out).trim().to_string()
}

/// Debian's numpy under the site Python counts as installed: a package needing
/// `numpy >=1.20` gets no conda numpy and imports the site's.
#[test]
fn the_site_pythons_numpy_satisfies_a_conda_package() {
    let t = TestEnv::on_channel(shared_channel(), "");
    ok(&t.run(&[
        "create",
        "-n",
        "s",
        "--site-python",
        MODULE_PYTHON,
        "np-user",
    ]));
    let meta = conda_meta(&t, "s");
    assert!(
        meta.iter().any(|m| m.starts_with("np-user-1.0-")),
        "{meta:?}"
    );
    assert!(
        records_of(&meta, "numpy").is_empty(),
        "a conda numpy: {meta:?}"
    );
    assert_eq!(
        env_numpy(&t, "s"),
        "1.24.2 /usr/lib/python3/dist-packages/numpy/__init__.py"
    );
    let site_packages = &manifest(&t, "s")["provided"]["site_packages"];
    assert!(
        site_packages
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p == "/usr/lib/python3/dist-packages")),
        "{site_packages}"
    );
}

/// Where a constraint rules the site's numpy out, conda's is installed, and the
/// summary says it shadows the site's; `--ignore-site-packages` installs conda's anyway and
/// is remembered.
#[test]
fn conda_numpy_over_the_sites_is_said_and_the_opt_out_remembered() {
    let t = TestEnv::on_channel(shared_channel(), "");
    let conda_numpy = |name: &str| {
        format!(
            "2.2.6 {}",
            prefix(&t, name)
                .join("lib/python3.11/site-packages/numpy/__init__.py")
                .display()
        )
    };
    let out = t.run(&[
        "create",
        "-n",
        "s2",
        "--site-python",
        MODULE_PYTHON,
        "np2-user",
    ]);
    ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains("numpy 2.2.6 in the env shadows the site Python's numpy 1.24.2"),
        "{err}"
    );
    assert!(
        conda_meta(&t, "s2").contains(&"numpy-2.2.6-py311h0_0".to_string()),
        "{:?}",
        conda_meta(&t, "s2")
    );
    assert_eq!(env_numpy(&t, "s2"), conda_numpy("s2"));

    ok(&t.run(&[
        "create",
        "-n",
        "s3",
        "--site-python",
        MODULE_PYTHON,
        "--ignore-site-packages",
        "np-user",
    ]));
    assert!(
        conda_meta(&t, "s3").contains(&"numpy-2.2.6-py311h0_0".to_string()),
        "{:?}",
        conda_meta(&t, "s3")
    );
    assert_eq!(env_numpy(&t, "s3"), conda_numpy("s3"));
    assert_eq!(
        manifest(&t, "s3")["provided"]["ignore_site_packages"],
        serde_json::json!(true)
    );
}

/// A second site for the export tests: its own world on the same channel, whose MODULEPATH holds only
/// Debian's `openmpi/4.1.4` and `gcc/12.2` (a module that provides nothing), with `config`.
fn second_site(config: &str) -> (TestEnv, PathBuf) {
    let b = TestEnv::on_channel(shared_channel(), config);
    let mods = b.path().join("site-b-modules");
    for module in ["openmpi/4.1.4", "gcc/12.2"] {
        let to = mods.join(module);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(b.site_modules.join(module), to).unwrap();
    }
    (b, mods)
}

/// Run `script` at the second site: a module shell whose MODULEPATH is only its own.
fn at_second_site(b: &TestEnv, mods: &Path, script: &str) -> std::process::Output {
    b.module_shell(
        Ms::Lmod,
        &format!(
            "export MODULEPATH={}\n{script}",
            sh(&mods.display().to_string())
        ),
    )
}

/// An env whose Open MPI came from a module, exported as environment.yml and as a
/// lock: both say what the module provided, the lock holds no stand-in as a package, and
/// py-rattler still reads it; at a second site whose `module_map` maps the module to its own
/// Open MPI, `create -f` derives the stand-in again from that module.
#[test]
fn export_then_create_f_at_a_second_site_derives_the_stand_in_again() {
    let t = TestEnv::on_channel(shared_channel(), "");
    ok(&with_modules(
        &t,
        Ms::Lmod,
        "openmpi/4.1.6",
        &["create", "-n", "a", "mpi4py"],
    ));
    let yml = t.path().join("a.yml");
    let lock = t.path().join("a.lock");
    ok(&t.run(&["export", "-n", "a", "-o", yml.to_str().unwrap()]));
    ok(&t.run(&[
        "export",
        "-n",
        "a",
        "--format",
        "lock",
        "-o",
        lock.to_str().unwrap(),
    ]));

    let text = std::fs::read_to_string(&yml).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let provided: serde_yaml::Value = serde_yaml::from_str(
        "[{module: openmpi/4.1.6, rule: openmpi/*, provides: [openmpi 4.1.6, mpi 1.0 openmpi]}]",
    )
    .unwrap();
    assert_eq!(doc["envmod"]["provided"], provided, "{text}");

    let text = std::fs::read_to_string(&lock).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let platforms = doc["platforms"]
        .as_sequence()
        .unwrap_or_else(|| panic!("no platforms: {text}"));
    let linux = platforms
        .iter()
        .find(|p| p["name"] == "linux-64")
        .unwrap_or_else(|| panic!("no linux-64 platform: {text}"));
    let virtuals: Vec<&str> = linux["virtual-packages"]
        .as_sequence()
        .unwrap_or_else(|| panic!("no virtual-packages: {text}"))
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for want in ["openmpi=4.1.6=envmod_module", "mpi=1.0=openmpi"] {
        assert!(virtuals.contains(&want), "no {want}: {text}");
    }
    assert!(
        !text.contains("envmod:module"),
        "a stand-in's URL in the lock: {text}"
    );
    assert!(
        !text.contains("/openmpi-4.1.6-"),
        "conda's openmpi in the lock: {text}"
    );
    let read = r#"
import sys
from rattler import LockFile
env = LockFile.from_path(sys.argv[1]).default_environment()
for r in sorted(env.conda_repodata_records()["linux-64"], key=lambda r: r.name.normalized):
    print(r.name.normalized, r.build)
"#;
    let seen = common::peer(read, &[lock.to_str().unwrap()]);
    assert!(seen.contains("mpi4py mpi_openmpi_py311h0_0\n"), "{seen}");
    assert!(
        !seen
            .lines()
            .any(|l| l.starts_with("openmpi ") || l.starts_with("mpi ")),
        "{seen}"
    );

    let mapped = "module_map:\n  openmpi/4.1.6: openmpi/4.1.4\n";
    let (b, mods) = second_site(mapped);
    let check = |b: &TestEnv, name: &str, out: &std::process::Output| {
        ok(out);
        let err = stderr(out);
        assert!(
            err.contains("openmpi 4.1.4 ← module openmpi/4.1.4"),
            "{name}: {err}"
        );
        let meta = conda_meta(b, name);
        assert!(
            meta.iter()
                .any(|m| m == "mpi4py-4.1.2-mpi_openmpi_py311h0_0"),
            "{name}: {meta:?}"
        );
        for mpi in ["openmpi", "mpich", "mpi"] {
            assert!(records_of(&meta, mpi).is_empty(), "{name}: {meta:?}");
        }
        assert_eq!(libmpi(b, name), Vec::<String>::new(), "{name}");
    };
    let out = at_second_site(
        &b,
        &mods,
        &format!("envmod create -n y -f {}", sh(yml.to_str().unwrap())),
    );
    check(&b, "y", &out);
    let out = at_second_site(
        &b,
        &mods,
        &format!(
            "module load openmpi/4.1.4 || exit 8\nenvmod create -n l -f {}",
            sh(lock.to_str().unwrap())
        ),
    );
    check(&b, "l", &out);
}

/// At a second site with no module for the Open MPI the file used, `create -f`
/// refuses, naming the package and the module; with `--skip-missing-modules` conda's
/// openmpi is installed instead.
#[test]
fn create_f_without_a_providing_module_refuses_or_skips_to_conda_mpi() {
    let t = TestEnv::on_channel(shared_channel(), "");
    ok(&with_modules(
        &t,
        Ms::Lmod,
        "openmpi/4.1.6",
        &["create", "-n", "a", "mpi4py"],
    ));
    let yml = t.path().join("a.yml");
    let lock = t.path().join("a.lock");
    ok(&t.run(&["export", "-n", "a", "-o", yml.to_str().unwrap()]));
    ok(&t.run(&[
        "export",
        "-n",
        "a",
        "--format",
        "lock",
        "-o",
        lock.to_str().unwrap(),
    ]));
    let yml = sh(yml.to_str().unwrap());
    let lock = sh(lock.to_str().unwrap());

    // No map: the module is missing here.
    let (b, mods) = second_site("");
    let out = at_second_site(&b, &mods, &format!("envmod create -n y -f {yml}"));
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("openmpi/4.1.6"), "{err}");
    nothing_created(&b, "y");

    // Mapped to a module that provides nothing: no module here provides openmpi.
    let (b, mods) = second_site("module_map:\n  openmpi/4.1.6: gcc/12.2\n");
    let out = at_second_site(&b, &mods, &format!("envmod create -n y -f {yml}"));
    let err = stderr(&out);
    assert!(!out.status.success(), "built with no openmpi: {err}");
    assert!(
        err.contains("provides openmpi") && err.contains("openmpi/4.1.6"),
        "{err}"
    );
    nothing_created(&b, "y");

    // A lock in a shell with no Open MPI module.
    let out = at_second_site(&b, &mods, &format!("envmod create -n l -f {lock}"));
    let err = stderr(&out);
    assert!(!out.status.success(), "built with no openmpi: {err}");
    assert!(err.contains("openmpi"), "{err}");
    nothing_created(&b, "l");

    // Skipped: conda's openmpi, which the lock's mpi4py build needs.
    let out = at_second_site(
        &b,
        &mods,
        &format!("envmod create -n l -f {lock} --skip-missing-modules"),
    );
    ok(&out);
    let meta = conda_meta(&b, "l");
    for want in [
        "mpi4py-4.1.2-mpi_openmpi_py311h0_0",
        "openmpi-4.1.6-h0_101",
        "mpi-1.0-openmpi",
    ] {
        assert!(meta.iter().any(|m| m == want), "no {want}: {meta:?}");
    }
    assert_eq!(libmpi(&b, "l"), ["libmpi.so.40"]);
    assert!(stderr(&out).contains("openmpi"), "{}", stderr(&out));

    let (b, mods) = second_site("");
    let out = at_second_site(
        &b,
        &mods,
        &format!("envmod create -n y -f {yml} --skip-missing-modules"),
    );
    ok(&out);
    let meta = conda_meta(&b, "y");
    assert!(meta.iter().any(|m| m == "openmpi-4.1.6-h0_101"), "{meta:?}");
    assert_eq!(libmpi(&b, "y"), ["libmpi.so.40"]);
}

/// A template that is no stand-in is a config error naming the file and the line.
#[test]
fn a_bad_template_is_a_config_error_naming_the_file_and_line() {
    let t = TestEnv::on_channel(
        shared_channel(),
        "module_provides:\n  \"openmpi/*\": [\"openmpi >=={version}\"]\n",
    );
    let out = with_modules(
        &t,
        Ms::Lmod,
        "openmpi/4.1.6",
        &["create", "-n", "x", "alpha"],
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    let place = format!("{}, line 3", t.site_config.display());
    assert!(err.contains(&place), "no {place:?}: {err}");
    assert!(
        err.contains("module_provides") && err.contains("openmpi/*"),
        "{err}"
    );
    nothing_created(&t, "x");
}

/// RHEL's `mpi/openmpi-x86_64` has no version in its name: the default rule does not apply,
/// `-v` says so, and conda's MPI is installed as without a module.
#[test]
fn a_module_with_no_version_provides_nothing_and_verbose_says_so() {
    let t = TestEnv::on_channel(shared_channel(), "");
    let out = with_modules(
        &t,
        Ms::Tcl,
        "mpi/openmpi-x86_64",
        &["-v", "create", "-n", "r", "partool=*=mpi_openmpi_*"],
    );
    ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains("module mpi/openmpi-x86_64 has no version in its name"),
        "{err}"
    );
    let meta = conda_meta(&t, "r");
    assert!(meta.iter().any(|m| m == "openmpi-4.1.6-h0_101"), "{meta:?}");
    assert_eq!(libmpi(&t, "r"), ["libmpi.so.40"]);
}

/// A solve that fails because of a stand-in names the module and the fix.
#[test]
fn a_stand_in_that_blocks_the_solve_is_named_in_the_hint() {
    let t = TestEnv::on_channel(shared_channel(), "");
    let out = with_modules(
        &t,
        Ms::Lmod,
        "openmpi/4.1",
        &["create", "-n", "h", "partool=*=mpi_openmpi_*"],
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "solved past the module: {err}");
    for part in [
        "partool needs openmpi >=4.1.6,<5.0a0",
        "module openmpi/4.1 provides 4.1",
        "load openmpi/4.1.6",
        "unload openmpi/4.1",
    ] {
        assert!(err.contains(part), "no {part:?}: {err}");
    }
    nothing_created(&t, "h");
}

/// Two MPI modules both give the `mpi` mutex: an error before any solve.
#[test]
fn two_mpi_modules_are_refused() {
    let t = TestEnv::on_channel(shared_channel(), "");
    let out = with_modules(
        &t,
        Ms::Lmod,
        "openmpi/4.1.6 mpich/4.2.1",
        &["create", "-n", "two", "alpha"],
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("modules openmpi/4.1.6 and mpich/4.2.1 both provide mpi"),
        "{err}"
    );
    nothing_created(&t, "two");
}
