//! Runs the walkthrough binary as a new user would and checks what it prints.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn check(output: std::process::Output) -> String {
    let stdout = String::from_utf8(output.stdout).unwrap();

    assert!(output.status.success(), "walkthrough failed:\n{stdout}");
    assert!(stdout.contains("Every expectation held."), "{stdout}");
    assert!(!stdout.contains("FAILED"), "{stdout}");
    assert!(stdout.contains("redelivered event: duplicate"), "{stdout}");
    assert!(stdout.contains("public link answers: the public link is gone"), "{stdout}");
    stdout
}

#[test]
fn walkthrough_passes_on_memory_store() {
    let output = Command::new(env!("CARGO_BIN_EXE_walkthrough")).env_remove("DATABASE_URL").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();

    check(output);
    assert!(stderr.contains("store: in memory"), "{stderr}");
}

#[test]
fn walkthrough_passes_on_postgres() {
    let url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is unset: run the tests with `bash scripts/test`, which starts a throwaway PostgreSQL");
    let output = Command::new(env!("CARGO_BIN_EXE_walkthrough")).env("DATABASE_URL", url).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();

    let stdout = check(output);
    assert!(stderr.contains("store: PostgreSQL"), "{stderr}");
    assert!(stdout.contains("1000 credits were granted once"), "{stdout}");
}
