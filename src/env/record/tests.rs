use super::*;
use crate::outputs::modulefile::tests::manifest;

fn world() -> (tempfile::TempDir, Environ) {
    let dir = tempfile::tempdir().unwrap();
    let env = Environ::from_pairs(&[("XDG_DATA_HOME", dir.path().to_str().unwrap())], "/");
    (dir, env)
}

#[test]
fn the_record_names_a_moved_place_and_keeps_what_members_may_change() {
    let (_dir, env) = world();
    let real = PathBuf::from("/home/alice/.envmod/envs/myenv");
    let printer = Printer::new(crate::printer::Verbosity::Quiet);
    let m = manifest(false, ModuleSystem::Lmod);
    // No record yet: the manifest as it is.
    assert!(trusted(&env, &real, &m, Replacing::NOTHING, "-n myenv").is_ok());
    save(&env, &real, &m, Channels::Used, &printer);

    let mut specs = m.clone();
    specs.specs.push("numpy".into());
    specs.python.site.minor = 12;
    specs.module = Some(modulefile::info_for(
        &specs,
        ModuleSystem::Lmod,
        &m.module.as_ref().unwrap().root,
    ));
    assert!(agrees(&env, &real, &specs));

    let mut moved = m.clone();
    moved.module = Some(modulefile::info_for(
        &m,
        ModuleSystem::Lmod,
        Path::new("/home/alice/.config"),
    ));
    let err = trusted(&env, &real, &moved, Replacing::NOTHING, "-n myenv").unwrap_err();
    assert!(err.to_string().contains("`module.root`"), "{err}");
    assert!(!agrees(&env, &real, &moved));
    // A command that sets the root from its own flag replaces the recorded one.
    let replacing = Replacing {
        module_root: true,
        ..Replacing::NOTHING
    };
    let t = trusted(&env, &real, &moved, replacing, "-n myenv").unwrap();
    assert_eq!(t.module.unwrap().root, m.module.as_ref().unwrap().root);

    let mut kernel = m.clone();
    kernel.kernel = Some(KernelInfo {
        name: "myenv".into(),
        display_name: "x".into(),
        dir: "/home/alice/.local/share/jupyter/kernels/myenv".into(),
        module_vars: Vec::new(),
    });
    let err = trusted(&env, &real, &kernel, Replacing::NOTHING, "-n myenv").unwrap_err();
    assert!(err.to_string().contains("`kernel`"), "{err}");
    assert!(
        crate::error::hint_of(&err)
            .unwrap()
            .contains("envmod kernel add -n myenv --name myenv"),
        "{err:?}"
    );

    let mut elsewhere = m.clone();
    elsewhere.prefix = "/home/alice/link-to-myenv".into();
    let err = trusted(&env, &real, &elsewhere, Replacing::NOTHING, "-n myenv").unwrap_err();
    assert!(err.to_string().contains("`prefix`"), "{err}");
    let mut shared = m.clone();
    shared.shared = Some(Sharing {
        group: Some("students".into()),
    });
    let err = trusted(&env, &real, &shared, Replacing::NOTHING, "-n myenv").unwrap_err();
    assert!(err.to_string().contains("`shared`"), "{err}");
    let replacing = Replacing {
        shared: true,
        ..Replacing::NOTHING
    };
    assert!(trusted(&env, &real, &shared, replacing, "-n myenv").is_ok());

    let mut modules = m.clone();
    modules.modules.push(crate::site::modules::LoadedModule {
        full_name: "tools/1.0".into(),
        file: None,
    });
    let err = trusted(&env, &real, &modules, Replacing::NOTHING, "-n myenv").unwrap_err();
    assert!(err.to_string().contains("`modules`"), "{err}");
    assert!(err.to_string().contains("tools/1.0"), "{err}");
    assert!(!agrees(&env, &real, &modules));
    assert!(trusted(&env, &real, &modules, Replacing::EVERYTHING, "-n myenv").is_ok());

    // Channels: a command that installed nothing keeps the ones last used.
    let mut channels = m.clone();
    channels.channels = vec!["file:///elsewhere".into()];
    save(&env, &real, &channels, Channels::Kept, &printer);
    assert_eq!(super::channels(&env, &real), Some(m.channels.clone()));
    save(&env, &real, &channels, Channels::Used, &printer);
    assert_eq!(
        super::channels(&env, &real),
        Some(channels.channels.clone())
    );

    forget(&env, &real);
    assert!(agrees(&env, &real, &moved));
}
#[test]
fn what_was_provided_is_the_users_and_an_old_record_means_nothing_was() {
    use crate::site::provides::ModuleProvision;
    let (_dir, env) = world();
    let real = PathBuf::from("/home/alice/.envmod/envs/myenv");
    let printer = Printer::new(crate::printer::Verbosity::Quiet);
    let mut m = manifest(false, ModuleSystem::Lmod);
    let site = Provisions {
        site_packages: vec!["/usr/lib/python3/dist-packages".into()],
        ..Provisions::default()
    };
    m.provided = Some(site.clone());
    save(&env, &real, &m, Channels::Used, &printer);

    let stand_in = |provides: &str| Provisions {
        modules: vec![ModuleProvision {
            module: "tools/1.0".into(),
            rule: "tools/*".into(),
            provides: vec![provides.into()],
        }],
        ..site.clone()
    };
    let mut forged = m.clone();
    forged.provided = Some(stand_in("numpy 99"));
    let err = trusted(&env, &real, &forged, Replacing::NOTHING, "-n myenv").unwrap_err();
    assert!(err.to_string().contains("`provided.modules`"), "{err}");
    assert!(err.to_string().contains("numpy 99"), "{err}");
    assert!(!agrees(&env, &real, &forged));
    assert!(trusted(&env, &real, &forged, Replacing::EVERYTHING, "-n myenv").is_ok());

    let mut elsewhere = m.clone();
    elsewhere.provided = Some(Provisions {
        site_packages: vec!["/home/ta/fake".into()],
        ..Provisions::default()
    });
    let err = trusted(&env, &real, &elsewhere, Replacing::NOTHING, "-n myenv").unwrap_err();
    assert!(
        err.to_string().contains("`provided.site_packages`"),
        "{err}"
    );
    assert!(err.to_string().contains("/home/ta/fake"), "{err}");

    // A member's --ignore-site-packages counts fewer of them: accepted.
    let mut ignored = m.clone();
    ignored.provided = Some(Provisions {
        ignore_site_packages: true,
        ..Provisions::default()
    });
    assert!(agrees(&env, &real, &ignored));

    // A long list is cut to a line's worth, its control characters escaped.
    let mut long = m.clone();
    long.provided = Some(stand_in(&format!("\u{1b}[2J{}", "x".repeat(100_000))));
    let err = trusted(&env, &real, &long, Replacing::NOTHING, "-n myenv").unwrap_err();
    assert!(err.to_string().len() < 1000, "{}", err.to_string().len());
    assert!(!err.to_string().contains('\u{1b}'), "{err}");

    // A record an older envmod wrote has no `provided`: the manifest it wrote had none.
    let path = record_path(&env, &real);
    let mut old: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    old.as_object_mut().unwrap().remove("provided");
    std::fs::write(&path, old.to_string()).unwrap();
    let mut before = m.clone();
    before.provided = None;
    assert!(agrees(&env, &real, &before));
    assert!(agrees(&env, &real, &ignored));
    assert!(!agrees(&env, &real, &m));
    assert!(!agrees(&env, &real, &forged));
}
