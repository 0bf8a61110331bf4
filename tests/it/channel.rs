//! The test-channel builder of tests/common/channel.rs: real, indexed, installable packages.
//! These tests use only the rattler crates, not envmod's code.

use crate::common;

use std::{
    collections::BTreeSet,
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use common::{
    channel::{self, Pkg},
    ok,
};
use serde_json::Value;

fn repodata(channel: &Path, subdir: &str) -> Value {
    let path = channel.join(subdir).join("repodata.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The file names under `section` (`packages` or `packages.conda`) of a repodata.json.
fn filenames(repodata: &Value, section: &str) -> BTreeSet<String> {
    repodata[section]
        .as_object()
        .unwrap_or_else(|| panic!("repodata has no {section:?} object: {repodata}"))
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn record<'a>(repodata: &'a Value, filename: &str) -> &'a Value {
    let section = if filename.ends_with(".conda") {
        "packages.conda"
    } else {
        "packages"
    };
    let r = &repodata[section][filename];
    assert!(r.is_object(), "no record for {filename} in {section}");
    r
}

fn depends(record: &Value) -> Vec<String> {
    record["depends"]
        .as_array()
        .expect("depends is an array")
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

fn extract(archive: &Path, dest: &Path) -> PathBuf {
    rattler_package_streaming::fs::extract(archive, dest)
        .unwrap_or_else(|e| panic!("extract {}: {e}", archive.display()));
    dest.to_path_buf()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

fn assert_executable(path: &Path) {
    let mode = fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o111,
        0o111,
        "{} is not executable ({mode:o})",
        path.display()
    );
}

fn sh_parses(path: &Path) {
    ok(&Command::new("sh").arg("-n").arg(path).output().unwrap());
}

#[test]
fn standard_channel_is_indexed_with_expected_packages() {
    let dir = tempfile::tempdir().unwrap();
    let ch = channel::standard_channel(dir.path());
    assert_eq!(ch, dir.path());

    let noarch = repodata(&ch, "noarch");
    assert_eq!(noarch["info"]["subdir"], "noarch");
    assert_eq!(
        filenames(&noarch, "packages.conda"),
        set(&[
            "alpha-1.0-pyhd8ed1ab_0.conda",
            "alpha-2.0-pyhd8ed1ab_0.conda",
            "gamma-1.0-pyhd8ed1ab_0.conda",
            "delta-1.0-pyhd8ed1ab_0.conda",
            "needs-new-python-1.0-pyhd8ed1ab_0.conda",
        ])
    );
    assert_eq!(
        filenames(&noarch, "packages"),
        set(&["beta-1.0-pyhd8ed1ab_0.tar.bz2"])
    );

    let linux = repodata(&ch, "linux-64");
    assert_eq!(linux["info"]["subdir"], "linux-64");
    assert_eq!(
        filenames(&linux, "packages.conda"),
        set(&[
            "libfoo-1.2.0-h1234_0.conda",
            "linuxonly-1.0-h0_0.conda",
            "python-3.12.0-h0_cpython.conda"
        ])
    );
    assert_eq!(filenames(&linux, "packages"), set(&[]));

    let osx = repodata(&ch, "osx-arm64");
    assert_eq!(osx["info"]["subdir"], "osx-arm64");
    assert_eq!(
        filenames(&osx, "packages.conda"),
        set(&[
            "libfoo-1.2.0-h1234_0.conda",
            "python-3.12.0-h0_cpython.conda"
        ])
    );

    let expected: &[(&str, &str, &[&str])] = &[
        ("noarch", "alpha-1.0-pyhd8ed1ab_0.conda", &["python >=3.8"]),
        ("noarch", "alpha-2.0-pyhd8ed1ab_0.conda", &["python >=3.8"]),
        (
            "noarch",
            "beta-1.0-pyhd8ed1ab_0.tar.bz2",
            &["python >=3.8", "alpha >=1"],
        ),
        (
            "noarch",
            "gamma-1.0-pyhd8ed1ab_0.conda",
            &["python >=3.8", "libfoo >=1.0"],
        ),
        (
            "noarch",
            "delta-1.0-pyhd8ed1ab_0.conda",
            &["python >=3.8", "alpha >=3"],
        ),
        (
            "noarch",
            "needs-new-python-1.0-pyhd8ed1ab_0.conda",
            &["python >=3.99"],
        ),
        (
            "linux-64",
            "libfoo-1.2.0-h1234_0.conda",
            &["__glibc >=2.17"],
        ),
        (
            "linux-64",
            "python-3.12.0-h0_cpython.conda",
            &["__glibc >=2.17"],
        ),
        ("linux-64", "linuxonly-1.0-h0_0.conda", &["__glibc >=2.17"]),
        ("osx-arm64", "libfoo-1.2.0-h1234_0.conda", &["__osx >=11.0"]),
        (
            "osx-arm64",
            "python-3.12.0-h0_cpython.conda",
            &["__osx >=11.0"],
        ),
    ];
    for (subdir, filename, deps) in expected {
        let rd = match *subdir {
            "noarch" => &noarch,
            "linux-64" => &linux,
            _ => &osx,
        };
        let r = record(rd, filename);
        assert_eq!(depends(r), *deps, "{filename}");
        assert_eq!(r["subdir"], *subdir, "{filename}");
        let (name, rest) = filename
            .rsplit_once('-')
            .unwrap()
            .0
            .rsplit_once('-')
            .unwrap();
        assert_eq!(r["name"], name, "{filename}");
        assert_eq!(r["version"], rest, "{filename}");
        if *subdir == "noarch" {
            assert_eq!(r["noarch"], "python", "{filename}");
        } else {
            assert!(r["noarch"].is_null(), "{filename}: {}", r["noarch"]);
        }

        // sha256 and size describe the archive on disk.
        let file = ch.join(subdir).join(filename);
        let size = fs::metadata(&file).unwrap().len();
        assert_eq!(r["size"].as_u64(), Some(size), "{filename}");
        let sha = channel::sha256_hex(fs::read(&file).unwrap());
        assert_eq!(r["sha256"].as_str(), Some(sha.as_str()), "{filename}");
        assert!(
            r["md5"].as_str().is_some_and(|m| m.len() == 32),
            "{filename}"
        );
    }
}

#[test]
fn python_wrapper_is_executable_and_parses() {
    let dir = tempfile::tempdir().unwrap();
    let ch = channel::standard_channel(&dir.path().join("channel"));
    let pkg = extract(
        &ch.join("linux-64/python-3.12.0-h0_cpython.conda"),
        &dir.path().join("python"),
    );

    let main = fs::read(pkg.join("bin/python3.12")).unwrap();
    assert!(main.starts_with(b"#!/bin/bash\n"));
    for name in ["python3.12", "python3", "python"] {
        let path = pkg.join("bin").join(name);
        assert!(!path.is_symlink(), "{name} should be a plain file");
        assert_executable(&path);
        ok(&Command::new("bash").arg("-n").arg(&path).output().unwrap());
        assert_eq!(
            fs::read(&path).unwrap(),
            main,
            "{name} differs from python3.12"
        );
    }
    assert!(pkg.join("lib/python3.12/site-packages/.keep").is_file());

    let paths = read_json(&pkg.join("info/paths.json"));
    let entries = paths["paths"].as_array().unwrap();
    let listed: BTreeSet<&str> = entries
        .iter()
        .map(|e| e["_path"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        BTreeSet::from([
            "bin/python",
            "bin/python3",
            "bin/python3.12",
            "bin/pyvenv.cfg",
            "lib/python3.12/site-packages/.keep"
        ])
    );
    for e in entries {
        assert_eq!(e["path_type"], "hardlink");
        let on_disk = fs::read(pkg.join(e["_path"].as_str().unwrap())).unwrap();
        assert_eq!(e["size_in_bytes"].as_u64(), Some(on_disk.len() as u64));
        assert_eq!(
            e["sha256"].as_str(),
            Some(channel::sha256_hex(&on_disk).as_str())
        );
    }
    let index = read_json(&pkg.join("info/index.json"));
    assert_eq!(index["name"], "python");
    assert_eq!(index["version"], "3.12.0");
    assert_eq!(index["build"], "h0_cpython");
    assert_eq!(index["subdir"], "linux-64");
}

/// Lay out python and alpha 2.0 the way an installer would (noarch `site-packages/` goes to
/// `lib/python3.12/site-packages/`) and run the wrapper, by path and through PATH.
#[test]
fn python_wrapper_imports_noarch_packages_from_its_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let ch = channel::standard_channel(&dir.path().join("channel"));
    let prefix = extract(
        &ch.join("linux-64/python-3.12.0-h0_cpython.conda"),
        &dir.path().join("prefix"),
    );
    let alpha = extract(
        &ch.join("noarch/alpha-2.0-pyhd8ed1ab_0.conda"),
        &dir.path().join("alpha"),
    );
    let site = prefix.join("lib/python3.12/site-packages");
    copy_tree(&alpha.join("site-packages"), &site);

    let script = "import alpha, alpha.cli, sys; print(alpha.NAME, alpha.VERSION); alpha.cli.main()";
    let out = Command::new(prefix.join("bin/python3.12"))
        .args(["-c", script, "x", "y"])
        .env("PYTHONPATH", "/elsewhere")
        .output()
        .unwrap();
    assert_eq!(ok(&out), "alpha 2.0\nalpha-cli ran 2.0 x y\n");

    // Called by bare name through PATH from another directory, with PYTHONPATH unset.
    let out = Command::new("sh")
        .args([
            "-c",
            "python -c \"import alpha, sys; print(alpha.__file__); print(sys.path)\"",
        ])
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", prefix.join("bin").display()),
        )
        .env_remove("PYTHONPATH")
        .current_dir("/")
        .output()
        .unwrap();
    let stdout = ok(&out);
    let site = site.canonicalize().unwrap();
    assert!(
        stdout.starts_with(&format!("{}/alpha/__init__.py\n", site.display())),
        "{stdout}"
    );
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), dest).unwrap();
        }
    }
}

#[test]
fn noarch_and_native_package_contents() {
    let dir = tempfile::tempdir().unwrap();
    let ch = channel::standard_channel(&dir.path().join("channel"));

    // alpha 2.0: noarch python with an entry point whose module exists.
    let alpha = extract(
        &ch.join("noarch/alpha-2.0-pyhd8ed1ab_0.conda"),
        &dir.path().join("alpha"),
    );
    let link = read_json(&alpha.join("info/link.json"));
    assert_eq!(link["noarch"]["type"], "python");
    assert_eq!(
        link["noarch"]["entry_points"],
        serde_json::json!(["alpha-cli = alpha.cli:main"])
    );
    assert_eq!(
        read_json(&alpha.join("info/index.json"))["noarch"],
        "python"
    );
    assert_eq!(
        fs::read_to_string(alpha.join("site-packages/alpha/__init__.py")).unwrap(),
        "VERSION = '2.0'\nNAME = 'alpha'\n"
    );
    assert!(alpha.join("site-packages/alpha/cli.py").is_file());

    // alpha 1.0 has no entry points.
    let alpha1 = extract(
        &ch.join("noarch/alpha-1.0-pyhd8ed1ab_0.conda"),
        &dir.path().join("alpha1"),
    );
    let link = read_json(&alpha1.join("info/link.json"));
    assert_eq!(link["noarch"]["entry_points"], serde_json::json!([]));
    assert!(!alpha1.join("site-packages/alpha/cli.py").exists());

    // beta is a .tar.bz2 and extracts just the same.
    let beta = extract(
        &ch.join("noarch/beta-1.0-pyhd8ed1ab_0.tar.bz2"),
        &dir.path().join("beta"),
    );
    assert_eq!(
        fs::read_to_string(beta.join("site-packages/beta/__init__.py")).unwrap(),
        "VERSION = '1.0'\nNAME = 'beta'\n"
    );
    assert_eq!(
        read_json(&beta.join("info/link.json"))["noarch"]["type"],
        "python"
    );

    // A dashed name gives an underscored module.
    let nnp = extract(
        &ch.join("noarch/needs-new-python-1.0-pyhd8ed1ab_0.conda"),
        &dir.path().join("nnp"),
    );
    assert!(
        nnp.join("site-packages/needs_new_python/__init__.py")
            .is_file()
    );

    // libfoo: prefix placeholder declared in paths.json, activation scripts.
    let libfoo = extract(
        &ch.join("linux-64/libfoo-1.2.0-h1234_0.conda"),
        &dir.path().join("libfoo"),
    );
    assert!(libfoo.join("lib/libfoo.so.1").is_file());
    let conf = fs::read_to_string(libfoo.join("etc/foo.conf")).unwrap();
    assert!(conf.contains(channel::PLACEHOLDER), "{conf}");
    let paths = read_json(&libfoo.join("info/paths.json"));
    let entry = |p: &str| {
        paths["paths"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["_path"] == p)
            .unwrap_or_else(|| panic!("{p} not in paths.json"))
            .clone()
    };
    let foo_conf = entry("etc/foo.conf");
    assert_eq!(foo_conf["file_mode"], "text");
    assert_eq!(foo_conf["prefix_placeholder"], channel::PLACEHOLDER);
    assert!(entry("lib/libfoo.so.1")["prefix_placeholder"].is_null());

    let activate = libfoo.join("etc/conda/activate.d/libfoo_activate.sh");
    let deactivate = libfoo.join("etc/conda/deactivate.d/libfoo_deactivate.sh");
    sh_parses(&activate);
    sh_parses(&deactivate);
    let script = format!(
        ". {a}; echo \"$FOO_HOME $FOO_ACTIVATED\"; . {d}; echo \"${{FOO_HOME-unset}} ${{FOO_ACTIVATED-unset}}\"",
        a = common::sh(&activate.display().to_string()),
        d = common::sh(&deactivate.display().to_string()),
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .env("CONDA_PREFIX", "/some/env")
        .output()
        .unwrap();
    assert_eq!(ok(&out), "/some/env/share/foo yes\nunset unset\n");
}

#[test]
fn many_noarch_gives_n_records() {
    let dir = tempfile::tempdir().unwrap();
    let ch = channel::many_noarch(dir.path(), 20);

    let noarch = repodata(&ch, "noarch");
    let names: BTreeSet<String> = (0..20)
        .map(|i| format!("pkg{i:03}-1.0-pyhd8ed1ab_0.conda"))
        .collect();
    assert_eq!(filenames(&noarch, "packages.conda"), names);
    assert_eq!(filenames(&noarch, "packages"), set(&[]));

    let pkg006 = record(&noarch, "pkg006-1.0-pyhd8ed1ab_0.conda");
    assert_eq!(depends(pkg006), ["python >=3.8", "pkg003 >=1"]);
    let pkg005 = record(&noarch, "pkg005-1.0-pyhd8ed1ab_0.conda");
    assert_eq!(depends(pkg005), ["python >=3.8"]);
    let with_deps = noarch["packages.conda"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| depends(r).len() > 1)
        .count();
    assert_eq!(
        with_deps, 6,
        "pkg003, 006, 009, 012, 015, 018 depend on another"
    );

    // The stand-in python is there too, so the channel solves on its own.
    assert_eq!(
        filenames(&repodata(&ch, "linux-64"), "packages.conda"),
        set(&["python-3.12.0-h0_cpython.conda"])
    );
}

#[test]
fn write_channel_always_makes_both_subdirs_and_reindexes() {
    let dir = tempfile::tempdir().unwrap();
    let extra = Pkg::new("solo", "0.1", "0", "noarch").with_file("share/solo/README", "hi\n");
    channel::write_channel(dir.path(), &[extra]);
    assert_eq!(
        filenames(&repodata(dir.path(), "noarch"), "packages.conda"),
        set(&["solo-0.1-0.conda"])
    );
    assert_eq!(
        filenames(&repodata(dir.path(), "linux-64"), "packages.conda"),
        set(&[])
    );
    let solo = record(&repodata(dir.path(), "noarch"), "solo-0.1-0.conda").clone();
    assert!(
        solo["noarch"].is_null(),
        "plain noarch package: {}",
        solo["noarch"]
    );
    assert_eq!(depends(&solo), Vec::<String>::new());

    // Writing more packages adds to the channel and re-indexes it.
    channel::write_channel(dir.path(), &[channel::libfoo()]);
    assert_eq!(
        filenames(&repodata(dir.path(), "noarch"), "packages.conda"),
        set(&["solo-0.1-0.conda"])
    );
    assert_eq!(
        filenames(&repodata(dir.path(), "linux-64"), "packages.conda"),
        set(&["libfoo-1.2.0-h1234_0.conda"])
    );
}

#[test]
fn builds_are_reproducible() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    channel::standard_channel(a.path());
    channel::standard_channel(b.path());
    for subdir in ["noarch", "linux-64"] {
        for section in ["packages", "packages.conda"] {
            let ra = repodata(a.path(), subdir);
            let rb = repodata(b.path(), subdir);
            for name in filenames(&ra, section) {
                assert_eq!(
                    ra[section][&name]["sha256"], rb[section][&name]["sha256"],
                    "{subdir}/{name} differs between two builds"
                );
            }
        }
    }
}

#[test]
fn channel_url_is_a_file_directory_url() {
    let dir = tempfile::tempdir().unwrap();
    let ch = channel::standard_channel(dir.path());
    let url = channel::channel_url(&ch);
    assert_eq!(url.scheme(), "file");
    assert!(url.path().ends_with('/'), "{url}");
    assert!(
        url.join("noarch/repodata.json")
            .unwrap()
            .to_file_path()
            .unwrap()
            .is_file()
    );
}

/// rattler itself solves against the channel and installs from it: noarch packages are
/// relocated under lib/python3.12, entry points work through the stand-in python, and
/// prefix placeholders are replaced.
mod with_rattler {
    use std::{path::Path, process::Command, str::FromStr};

    use rattler::{install::Installer, package_cache::PackageCache};
    use rattler_conda_types::{
        Channel, GenericVirtualPackage, MatchSpec, PackageName, ParseMatchSpecOptions,
        RepoDataRecord, Subdir, Version, package::BuildString,
    };
    use rattler_repodata_gateway::Gateway;
    use rattler_solve::{SolverImpl, SolverTask, resolvo};

    use super::{channel, ok};

    fn virtual_packages() -> Vec<GenericVirtualPackage> {
        [("__glibc", "2.28"), ("__linux", "6.1"), ("__unix", "0")]
            .into_iter()
            .map(|(name, version)| GenericVirtualPackage {
                name: PackageName::new_unchecked(name),
                version: Version::from_str(version).unwrap(),
                build_string: BuildString::new_unchecked("0"),
            })
            .collect()
    }

    async fn solve(
        channel: &Path,
        cache: &Path,
        specs: &[&str],
    ) -> Result<Vec<RepoDataRecord>, String> {
        let specs: Vec<MatchSpec> = specs
            .iter()
            .map(|s| MatchSpec::from_str(s, ParseMatchSpecOptions::strict()).unwrap())
            .collect();
        let gateway = Gateway::builder()
            .with_cache_dir(cache.join("repodata"))
            .with_package_cache(PackageCache::new(cache.join("pkgs")))
            .finish();
        let out = gateway
            .query(
                vec![Channel::from_url(channel::channel_url(channel))],
                [Subdir::Linux64, Subdir::NoArch],
                specs.clone(),
            )
            .recursive(true)
            .execute()
            .await
            .expect("gateway reads the channel");
        let available: Vec<Vec<&RepoDataRecord>> =
            out.repodata.iter().map(|r| r.iter().collect()).collect();
        let task = SolverTask {
            virtual_packages: virtual_packages(),
            specs,
            ..SolverTask::from_iter(available)
        };
        resolvo::Solver
            .solve(task)
            .map(|r| r.records)
            .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn solves_and_installs_the_standard_channel() {
        let dir = tempfile::tempdir().unwrap();
        let ch = channel::standard_channel(&dir.path().join("channel"));
        let cache = dir.path().join("cache");

        let records = solve(&ch, &cache, &["alpha >=2", "beta", "gamma"])
            .await
            .unwrap();
        let mut solved: Vec<String> = records
            .iter()
            .map(|r| {
                let p = &r.package_record;
                format!("{} {}", p.name.as_normalized(), p.version)
            })
            .collect();
        solved.sort();
        assert_eq!(
            solved,
            [
                "alpha 2.0",
                "beta 1.0",
                "gamma 1.0",
                "libfoo 1.2.0",
                "python 3.12.0"
            ]
        );

        let prefix = dir.path().join("prefix");
        Installer::new()
            .with_target_platform(Subdir::Linux64)
            .with_package_cache(PackageCache::new(cache.join("pkgs")))
            .install(&prefix, records)
            .await
            .expect("rattler installs the packages");

        let site = prefix.join("lib/python3.12/site-packages");
        for module in ["alpha", "beta", "gamma"] {
            assert!(
                site.join(module).join("__init__.py").is_file(),
                "{module} not relocated"
            );
        }
        let conf = std::fs::read_to_string(prefix.join("etc/foo.conf")).unwrap();
        assert!(!conf.contains(channel::PLACEHOLDER), "{conf}");
        assert!(
            conf.contains(&format!("prefix = {}\n", prefix.display())),
            "{conf}"
        );

        let out = Command::new(prefix.join("bin/alpha-cli"))
            .arg("hello")
            .output()
            .unwrap();
        assert_eq!(ok(&out), "alpha-cli ran 2.0 hello\n");
        let out = Command::new(prefix.join("bin/python"))
            .args([
                "-c",
                "import alpha, beta, gamma; print(alpha.VERSION, beta.NAME, gamma.VERSION)",
            ])
            .output()
            .unwrap();
        assert_eq!(ok(&out), "2.0 beta 1.0\n");
    }

    #[tokio::test]
    async fn unsatisfiable_packages_do_not_solve() {
        let dir = tempfile::tempdir().unwrap();
        let ch = channel::standard_channel(&dir.path().join("channel"));
        let cache = dir.path().join("cache");
        for spec in ["delta", "needs-new-python"] {
            let err = solve(&ch, &cache, &[spec]).await.expect_err(spec);
            assert!(err.contains(spec), "{spec}: {err}");
        }
        // ... while their siblings do.
        assert!(solve(&ch, &cache, &["alpha"]).await.is_ok());
    }
}
