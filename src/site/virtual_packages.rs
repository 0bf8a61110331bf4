//! The virtual packages a solve runs with: what this machine has (kernel, glibc, CPU, a CUDA
//! driver), or for a platform envmod does not run on, fixed conservative ones (the oldest
//! systems such clusters still run). The usual `CONDA_OVERRIDE_*` variables change either.
//!
//! They are what the cluster gives, so they are decided here and handed to the solve
//! finished: the overrides come from [`Environ`], never from the process, so a test or a
//! later step can say exactly what a solve sees.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use rattler_conda_types::{GenericVirtualPackage, Subdir, Version};
use rattler_virtual_packages::{
    AmdGpu, AmdGpuArch, Android, Archspec, Cuda, CudaArch, DetectVirtualPackageError, EnvOverride,
    Ios, LibC, Linux, Osx, Override, VirtualPackageOverrides, VirtualPackages, Windows,
};

use crate::environ::Environ;

/// The `CONDA_OVERRIDE_*` variables that are set, each with its value. A variable set to the
/// empty string is kept: conda reads it as "no such package" (`CONDA_OVERRIDE_CUDA=` means
/// no CUDA, even on a GPU node).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Overrides {
    set: BTreeMap<&'static str, String>,
}

/// Every variable rattler knows, by the name it gives each slot.
const NAMES: [&str; 11] = [
    Windows::DEFAULT_ENV_NAME,
    Osx::DEFAULT_ENV_NAME,
    Ios::DEFAULT_ENV_NAME,
    Android::DEFAULT_ENV_NAME,
    Linux::DEFAULT_ENV_NAME,
    LibC::DEFAULT_ENV_NAME,
    Cuda::DEFAULT_ENV_NAME,
    CudaArch::DEFAULT_ENV_NAME,
    AmdGpu::DEFAULT_ENV_NAME,
    AmdGpuArch::DEFAULT_ENV_NAME,
    Archspec::DEFAULT_ENV_NAME,
];

impl Overrides {
    pub(crate) fn from_environ(env: &Environ) -> Self {
        Self {
            set: NAMES
                .iter()
                .filter_map(|&name| Some((name, env.get_set(name)?.to_owned())))
                .collect(),
        }
    }

    /// rattler's overrides with each value spelled out: a slot with no variable is `None`,
    /// which makes rattler detect it on the host rather than read the variable itself.
    fn to_rattler(&self) -> VirtualPackageOverrides {
        let slot = |name: &str| self.set.get(name).map(|v| Override::String(v.clone()));
        // Non-exhaustive: a slot rattler adds later stays `None`, detected on the host.
        let mut o = VirtualPackageOverrides::default();
        o.win = slot(Windows::DEFAULT_ENV_NAME);
        o.osx = slot(Osx::DEFAULT_ENV_NAME);
        o.ios = slot(Ios::DEFAULT_ENV_NAME);
        o.android = slot(Android::DEFAULT_ENV_NAME);
        o.linux = slot(Linux::DEFAULT_ENV_NAME);
        o.libc = slot(LibC::DEFAULT_ENV_NAME);
        o.cuda = slot(Cuda::DEFAULT_ENV_NAME);
        o.cuda_arch = slot(CudaArch::DEFAULT_ENV_NAME);
        o.amdgpu = slot(AmdGpu::DEFAULT_ENV_NAME);
        o.amdgpu_arch = slot(AmdGpuArch::DEFAULT_ENV_NAME);
        o.archspec = slot(Archspec::DEFAULT_ENV_NAME);
        o
    }
}

/// The virtual packages to solve `platform` with: this machine's when envmod runs on it,
/// otherwise the ones [`assumed_virtual_packages`] gives.
pub(crate) fn for_platform(
    platform: Subdir,
    overrides: &Overrides,
) -> Result<Vec<GenericVirtualPackage>> {
    let overrides = overrides.to_rattler();
    let packages = if Subdir::current() == Some(platform) {
        VirtualPackages::detect_for_platform(platform, &overrides, None)
            .context("failed to detect virtual packages")?
    } else {
        assumed_virtual_packages(platform, &overrides).with_context(|| {
            format!(
                "cannot set the virtual packages for {platform} from the CONDA_OVERRIDE_* variables"
            )
        })?
    };
    Ok(packages.into_generic_virtual_packages().collect())
}

/// What became of a module's virtual package (`__cuda 12.2` from `cuda/12.2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ModuleVirtual {
    /// Nothing else gave the package: the module's stands (a login node with no driver).
    Used {
        package: GenericVirtualPackage,
        module: String,
    },
    /// The machine or a `CONDA_OVERRIDE_*` variable decided, and the module's was dropped;
    /// the text says why, for `-v`.
    Passed(String),
}

/// Add the modules' virtual packages to `detected`. A driver this machine has, or an
/// explicit `CONDA_OVERRIDE_*` (even set empty, which means "none"), wins over a module: a
/// toolkit module only guesses what the compute nodes' drivers give.
pub(crate) fn merge_module_virtuals(
    detected: &mut Vec<GenericVirtualPackage>,
    from_modules: &[(GenericVirtualPackage, String)],
    overrides: &Overrides,
) -> Vec<ModuleVirtual> {
    let mut out = Vec::new();
    for (package, module) in from_modules {
        let name = package.name.as_normalized();
        let variable = format!(
            "CONDA_OVERRIDE_{}",
            name.trim_start_matches("__").to_ascii_uppercase()
        );
        if let Some(value) = overrides.set.get(variable.as_str()) {
            let given = if value.is_empty() {
                format!("{variable} is set empty, so there is no {name}")
            } else {
                format!("{variable}={value} decides {name}")
            };
            out.push(ModuleVirtual::Passed(format!(
                "{given}; module {module}'s {} is not used",
                shown(package)
            )));
        } else if let Some(found) = detected.iter().find(|d| d.name == package.name) {
            out.push(ModuleVirtual::Passed(format!(
                "{} from this machine; module {module}'s {} is not used",
                shown(found),
                shown(package)
            )));
        } else {
            detected.push(package.clone());
            out.push(ModuleVirtual::Used {
                package: package.clone(),
                module: module.clone(),
            });
        }
    }
    out
}

/// Why a module's virtual package was used: this machine gave none.
pub(crate) fn none_here(package: &GenericVirtualPackage) -> String {
    match package.name.as_normalized() {
        "__cuda" => "no CUDA driver here".to_owned(),
        other => format!("none on this machine: {other}"),
    }
}

/// `__cuda 12.2`.
pub(crate) fn shown(package: &GenericVirtualPackage) -> String {
    format!("{} {}", package.name.as_normalized(), package.version)
}

/// What a `platform` machine is assumed to provide: for Linux, a 5.10 kernel and glibc 2.28
/// (RHEL 8); for macOS, the first release on its CPU (11.0 on arm64, 10.15 otherwise); the
/// base CPU of each architecture, so no package tuned for a newer one is chosen. rattler's
/// own cross-platform defaults keep this machine's `__linux`, `__glibc` and `__cuda`, which
/// say nothing about another cluster, so only an explicit override enters here.
fn assumed_virtual_packages(
    platform: Subdir,
    overrides: &VirtualPackageOverrides,
) -> Result<VirtualPackages, DetectVirtualPackageError> {
    let version = |v: &str| v.parse::<Version>().expect("valid version");
    let mut assumed = VirtualPackages::default();
    assumed.unix = platform.is_unix();
    if platform.is_linux() {
        assumed.linux = overridden(
            overrides.linux.as_ref(),
            Some(Linux {
                version: version("5.10"),
            }),
        )?;
        assumed.libc = overridden(
            overrides.libc.as_ref(),
            Some(LibC {
                family: "glibc".into(),
                version: version("2.28"),
            }),
        )?;
    }
    if platform.is_osx() {
        let first = if platform == Subdir::OsxArm64 {
            "11.0"
        } else {
            "10.15"
        };
        assumed.osx = overridden(
            overrides.osx.as_ref(),
            Some(Osx {
                version: version(first),
            }),
        )?;
    }
    if platform.is_windows() {
        assumed.win = overridden(overrides.win.as_ref(), Some(Windows { version: None }))?;
    }
    let cpu = match platform {
        Subdir::Linux64 | Subdir::Osx64 | Subdir::Win64 => Some(Archspec::from_name("x86_64")),
        Subdir::LinuxAarch64 => Some(Archspec::from_name("aarch64")),
        Subdir::LinuxPpc64le => Some(Archspec::from_name("ppc64le")),
        Subdir::OsxArm64 => Some(Archspec::from_name("arm64")),
        other => Archspec::from_platform(other),
    };
    assumed.archspec = overridden(overrides.archspec.as_ref(), cpu)?;
    assumed.cuda = overridden(overrides.cuda.as_ref(), None)?;
    if assumed.cuda.is_some() {
        assumed.cuda_arch = overridden::<CudaArch>(overrides.cuda_arch.as_ref(), None)?;
    }
    Ok(assumed)
}

/// `assumed` unless an override says otherwise; an empty override removes the package.
fn overridden<T: EnvOverride>(
    ov: Option<&Override>,
    assumed: Option<T>,
) -> Result<Option<T>, DetectVirtualPackageError> {
    match ov {
        Some(ov) => T::detect_with_fallback(ov, || Ok(assumed)),
        None => Ok(assumed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assumed(platform: Subdir, overrides: &VirtualPackageOverrides) -> Vec<String> {
        assumed_virtual_packages(platform, overrides)
            .unwrap()
            .into_generic_virtual_packages()
            .map(|p| p.to_string())
            .collect()
    }

    fn plain(platform: Subdir) -> Vec<String> {
        assumed(platform, &VirtualPackageOverrides::default())
    }

    fn names(packages: &[GenericVirtualPackage]) -> Vec<String> {
        packages.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn other_platforms_get_fixed_virtual_packages() {
        let linux = |arch: &str| {
            vec![
                "__unix=0=0".to_string(),
                "__linux=5.10=0".to_string(),
                "__glibc=2.28=0".to_string(),
                format!("__archspec=1={arch}"),
            ]
        };
        assert_eq!(plain(Subdir::Linux64), linux("x86_64"));
        assert_eq!(plain(Subdir::LinuxAarch64), linux("aarch64"));
        assert_eq!(plain(Subdir::LinuxPpc64le), linux("ppc64le"));
        assert_eq!(
            plain(Subdir::OsxArm64),
            vec!["__unix=0=0", "__osx=11.0=0", "__archspec=1=arm64"]
        );
        assert_eq!(
            plain(Subdir::Osx64),
            vec!["__unix=0=0", "__osx=10.15=0", "__archspec=1=x86_64"]
        );
        assert_eq!(
            plain(Subdir::Win64),
            vec!["__win=0=0", "__archspec=1=x86_64"]
        );
    }

    #[test]
    fn overrides_change_only_what_the_platform_has() {
        let mut overrides = VirtualPackageOverrides::default();
        overrides.osx = Some(Override::String("12.3".into()));
        overrides.libc = Some(Override::String(String::new()));
        overrides.linux = Some(Override::String("6.1".into()));
        overrides.cuda = Some(Override::String("12.4".into()));
        assert_eq!(
            assumed(Subdir::OsxArm64, &overrides),
            vec![
                "__unix=0=0",
                "__osx=12.3=0",
                "__cuda=12.4=0",
                "__archspec=1=arm64"
            ]
        );
        assert_eq!(
            assumed(Subdir::LinuxAarch64, &overrides),
            vec![
                "__unix=0=0",
                "__linux=6.1=0",
                "__cuda=12.4=0",
                "__archspec=1=aarch64"
            ]
        );
        assert_eq!(
            assumed(Subdir::Win64, &overrides),
            vec!["__win=0=0", "__cuda=12.4=0", "__archspec=1=x86_64"]
        );
    }

    #[test]
    fn overrides_come_from_the_environ_and_an_empty_one_counts() {
        let env = Environ::from_pairs(
            &[
                ("CONDA_OVERRIDE_CUDA", ""),
                ("CONDA_OVERRIDE_GLIBC", "2.17"),
                ("CONDA_OVERRIDE_NOT_A_SLOT", "1"),
                ("PATH", "/usr/bin"),
            ],
            "/",
        );
        let overrides = Overrides::from_environ(&env);
        let rattler = overrides.to_rattler();
        assert_eq!(rattler.cuda, Some(Override::String(String::new())));
        assert_eq!(rattler.libc, Some(Override::String("2.17".into())));
        // Unset slots are detected on the host, never read from the process.
        for unset in [
            &rattler.win,
            &rattler.osx,
            &rattler.ios,
            &rattler.android,
            &rattler.linux,
            &rattler.cuda_arch,
            &rattler.amdgpu,
            &rattler.amdgpu_arch,
            &rattler.archspec,
        ] {
            assert_eq!(unset, &None);
        }
        assert_eq!(
            Overrides::from_environ(&Environ::default()),
            Overrides::default()
        );

        // For another platform: the empty CUDA override leaves no __cuda, glibc is 2.17.
        let cuda = Environ::from_pairs(&[("CONDA_OVERRIDE_CUDA", "12.4")], "/");
        let with_cuda = for_platform(Subdir::LinuxAarch64, &Overrides::from_environ(&cuda));
        assert!(
            names(&with_cuda.unwrap()).contains(&"__cuda=12.4=0".to_string()),
            "a set override enters"
        );
        let got = names(&for_platform(Subdir::LinuxAarch64, &overrides).unwrap());
        assert_eq!(
            got,
            [
                "__unix=0=0",
                "__linux=5.10=0",
                "__glibc=2.17=0",
                "__archspec=1=aarch64"
            ]
        );
        // And on this machine too, whatever its driver: `CONDA_OVERRIDE_CUDA=` is no CUDA.
        if let Some(here) = Subdir::current() {
            let got = names(&for_platform(here, &overrides).unwrap());
            assert!(!got.iter().any(|p| p.starts_with("__cuda=")), "{got:?}");
            let got = names(&for_platform(here, &Overrides::from_environ(&cuda)).unwrap());
            assert!(got.contains(&"__cuda=12.4=0".to_string()), "{got:?}");
        }
    }

    #[test]
    fn a_bad_override_names_the_platform() {
        let env = Environ::from_pairs(&[("CONDA_OVERRIDE_OSX", "not a version")], "/");
        let err = for_platform(Subdir::OsxArm64, &Overrides::from_environ(&env)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot set the virtual packages for osx-arm64 from the CONDA_OVERRIDE_* variables"
        );
    }

    #[test]
    fn a_module_cuda_stands_only_where_nothing_else_decides() {
        let cuda = |v: &str| GenericVirtualPackage {
            name: "__cuda".parse().unwrap(),
            version: v.parse().unwrap(),
            build_string: "0".parse().unwrap(),
        };
        let from_module = [(cuda("12.2"), "cuda/12.2".to_owned())];
        let overrides =
            |pairs: &[(&str, &str)]| Overrides::from_environ(&Environ::from_pairs(pairs, "/"));

        // A login node: no driver, no variable.
        let mut detected = Vec::new();
        let merged = merge_module_virtuals(&mut detected, &from_module, &overrides(&[]));
        assert_eq!(detected, [cuda("12.2")]);
        assert_eq!(
            merged,
            [ModuleVirtual::Used {
                package: cuda("12.2"),
                module: "cuda/12.2".into()
            }]
        );

        // A driver: its version stands.
        let mut detected = vec![cuda("12.4")];
        let merged = merge_module_virtuals(&mut detected, &from_module, &overrides(&[]));
        assert_eq!(detected, [cuda("12.4")]);
        assert_eq!(
            merged,
            [ModuleVirtual::Passed(
                "__cuda 12.4 from this machine; module cuda/12.2's __cuda 12.2 is not used".into()
            )]
        );

        // An explicit variable, even empty, wins over both.
        for (value, said) in [
            ("12.4", "CONDA_OVERRIDE_CUDA=12.4 decides __cuda"),
            (
                "",
                "CONDA_OVERRIDE_CUDA is set empty, so there is no __cuda",
            ),
        ] {
            let mut detected = Vec::new();
            let merged = merge_module_virtuals(
                &mut detected,
                &from_module,
                &overrides(&[("CONDA_OVERRIDE_CUDA", value)]),
            );
            assert!(detected.is_empty(), "{value:?}");
            assert_eq!(
                merged,
                [ModuleVirtual::Passed(format!(
                    "{said}; module cuda/12.2's __cuda 12.2 is not used"
                ))]
            );
        }
    }
}
