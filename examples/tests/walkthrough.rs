//! Runs the walkthrough binary as a new user would and checks what it prints.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn walkthrough_passes_every_expectation() {
    let output = Command::new(env!("CARGO_BIN_EXE_walkthrough")).env_remove("DATABASE_URL").output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();

    assert!(output.status.success(), "walkthrough failed:\n{stdout}");
    assert!(stdout.contains("Every expectation held."), "{stdout}");
    assert!(!stdout.contains("FAILED"), "{stdout}");
    assert!(stdout.contains("redelivered event: duplicate"), "{stdout}");
    assert!(stdout.contains("public link answers: the public link is gone"), "{stdout}");
}
