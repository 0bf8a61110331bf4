//! The site's modules and Python standing in for conda packages: Debian's real Open MPI under
//! the real mpi4py, conda-forge's MPI variants and mutex, CUDA's `__cuda` and `cuda-version`,
//! and Debian's numpy under the site Python.
//!
//! The `fixtures_*` tests check the parts themselves (the test channel, the test modules, the
//! provisioned MPI and numpy) where no module enters the solve, so a failure there points at
//! the machine or the fixtures rather than at envmod.

mod common;

use std::path::{Path, PathBuf};

use common::{MODULE_PYTHON, Ms, TestEnv, channel, ok, sh, stderr};

/// A world whose site config lists a channel of `pkgs` (plus the standard packages).
fn world_with(pkgs: Vec<channel::Pkg>) -> TestEnv {
    let t = TestEnv::new();
    let dir = t.path().join("channel");
    let mut all = channel::standard_packages();
    all.extend(pkgs);
    channel::write_channel(&dir, &all);
    t.set_site_config(&format!("channels: [{}]\n", dir.display()));
    t
}

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
    let t = world_with(channel::cuda_packages());
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

    let t = world_with(channel::numpy_packages());
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
    let t = world_with(channel::mpi_packages());
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
