//! What people see in their terminal, as insta snapshots with temporary paths and versions
//! filtered out, the way uv tests its CLI.

use crate::common;

use common::{MODULE_PYTHON, TestEnv};

fn settings(t: &TestEnv) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(&regex::escape(&t.path().display().to_string()), "[TMP]");
    s.add_filter(r"3\.11\.\d+", "3.11.[X]");
    s.add_filter(r"envmod \d+\.\d+\.\d+", "envmod [VERSION]");
    // Table columns are as wide as the temporary paths in them.
    s.add_filter(r" {2,}", "  ");
    s
}

fn run(t: &TestEnv, args: &[&str]) -> String {
    let out = t.envmod().args(args).output().unwrap();
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn create_list_and_errors() {
    let t = TestEnv::new();
    settings(&t).bind(|| {
        insta::assert_snapshot!(
            "create",
            run(
                &t,
                &[
                    "create",
                    "-n",
                    "demo",
                    "--module-system",
                    "lmod",
                    "--site-python",
                    MODULE_PYTHON
                ]
            )
        );
        insta::assert_snapshot!("list", run(&t, &["list"]));
        insta::assert_snapshot!(
            "create_again",
            run(&t, &["create", "-n", "demo", "--module-system", "lmod"])
        );
        insta::assert_snapshot!("bad_name", run(&t, &["create", "-n", "a/b"]));
        insta::assert_snapshot!("delete_without_yes", run(&t, &["delete", "-n", "demo"]));
        insta::assert_snapshot!("delete", run(&t, &["delete", "-n", "demo", "--yes"]));
    });
}
