//! The package records in `conda-meta` of a shared environment are the group's to write: a
//! TA can make one huge, or swap one for a FIFO while the instructor's envmod reads them.

use std::time::{Duration, Instant};

use crate::common::{
    course::{Course, Who},
    sh, stderr,
};

#[test]
fn a_sparse_record_of_gigabytes_is_refused_without_reading_it() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["alpha"]);
    let record = prefix.join("conda-meta/zzz-1.0-0.json");
    crate::common::ok(&c.bash(
        Who::Ta,
        &format!("truncate -s 3G {}", sh(&record.display().to_string())),
    ));
    let start = Instant::now();
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &["freeze", "-p", prefix.to_str().unwrap()],
    );
    let took = start.elapsed();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("zzz-1.0-0.json") && err.contains("larger than"),
        "the error does not name the record and the limit: {err}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn a_record_swapped_for_a_fifo_never_hangs_the_instructor() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["alpha"]);
    let meta = prefix.join("conda-meta");
    let real = std::fs::read_dir(&meta)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    // The TA keeps swapping a copy of a real record and a FIFO under one name.
    let racer = format!(
        "cd {m} && cp {r} .rec && mkfifo .fifo && end=$((SECONDS+8)); while [ $SECONDS -lt $end ]; do cp .rec zz-1.0-0.json.tmp && mv -f zz-1.0-0.json.tmp zz-1.0-0.json; mkfifo zz.fifo 2>/dev/null; mv -f zz.fifo zz-1.0-0.json; done; rm -f zz-1.0-0.json .rec .fifo",
        m = sh(&meta.display().to_string()),
        r = sh(&real.display().to_string()),
    );
    let mut ta = std::process::Command::new("runuser");
    ta.args([
        "-u",
        Who::Ta.user(),
        "--",
        "bash",
        "-c",
        &format!("umask 002; {racer}"),
    ]);
    let mut ta = ta.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let until = Instant::now() + Duration::from_secs(7);
    let mut runs = 0;
    while Instant::now() < until {
        let start = Instant::now();
        let out = c.bash(
            Who::Instructor,
            &format!(
                "timeout 10 \"$ENVMOD\" unfreeze -p {p}; echo \"rc=$?\"",
                p = sh(&prefix.display().to_string())
            ),
        );
        let text = crate::common::stdout(&out);
        assert!(
            !text.contains("rc=124"),
            "unfreeze hung on the FIFO after {runs} runs: {}",
            stderr(&out)
        );
        assert!(start.elapsed() < Duration::from_secs(10));
        runs += 1;
    }
    ta.wait().unwrap();
    assert!(runs > 5, "only {runs} runs");
}
