//! The command line itself: validation errors, help, schema, login.

use serde_json::Value;

use crate::support::{World, base_seed, fixture};

/// Every broken manifest of the corpus fails `validate` and `plan` with exit
/// status 1 and a message located as FILE:LINE:COLUMN.
#[test]
fn every_broken_manifest_is_refused_with_a_located_message() {
    let dir = fixture("manifests/broken");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "the corpus has {} manifests",
        files.len()
    );
    let located = regex::Regex::new(r"\.yaml:\d+:\d+: error: ").unwrap();
    for file in files {
        for command in ["validate", "plan"] {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_scsync"))
                .args([command, "-c"])
                .arg(&file)
                .args(["--state", "/nonexistent/state.db"])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{} {}: {stderr}",
                command,
                file.display()
            );
            assert!(
                located.is_match(&stderr),
                "{command} {}: no located message in:\n{stderr}",
                file.display()
            );
        }
    }
}

/// A broken manifest pointing at a live (emulated) service sends nothing.
#[test]
fn a_broken_manifest_sends_no_request() {
    let world = World::new(base_seed());
    world.manifest(
        "tracks:\n  - key: a\n    file: missing.wav\n    title: A\n    sharing: secret\n",
    );
    let out = world.scsync(["plan"]).expect(1);
    let stderr = out.stderr();
    assert!(stderr.contains("scsync.yaml:"), "{stderr}");
    assert!(stderr.contains("missing.wav"), "{stderr}");
    assert!(stderr.contains("secret"), "{stderr}");
    world.scsync(["apply", "--yes"]).expect(1);
    assert_eq!(world.requests(), Vec::<Value>::new());
}

#[test]
fn login_goes_through_authorize_and_stores_tokens() {
    let world = World::new(base_seed());
    world.manifest("").login();
    let status = world.scsync(["status"]).expect(0).stdout();
    assert!(status.contains("token"), "{status}");
    // The tokens work: a plan reads the account.
    world.scsync(["plan"]).expect(0);
    let authorized = world
        .requests()
        .iter()
        .filter(|r| r["path"] == "/me")
        .all(|r| r["authorized"] == true);
    assert!(authorized);
}

#[test]
fn plan_without_login_says_how_to_log_in() {
    let world = World::new(base_seed());
    world.manifest("");
    let out = world.scsync(["plan"]).expect(1);
    assert!(out.stderr().contains("scsync login"), "{}", out.stderr());
}

#[test]
fn schema_is_json() {
    let world = World::new(base_seed());
    let out = world.scsync(["schema"]).expect(0).stdout();
    let schema: Value = serde_json::from_str(&out).unwrap();
    assert!(schema["properties"]["tracks"].is_object(), "{schema:#}");
}

#[test]
fn global_options_are_accepted_after_the_command() {
    let world = World::new(base_seed());
    world.manifest("");
    let out = world.scsync(["validate", "-q"]).expect(0).stdout();
    assert!(out.contains("valid"), "{out}");
}

#[test]
fn a_usage_error_exits_1_not_2() {
    let world = World::new(base_seed());
    world.manifest("");
    let out = world.scsync(["plan", "--formt", "json"]).expect(1);
    assert!(out.stderr().contains("--formt"), "{}", out.stderr());
    world.scsync(["--help"]).expect(0);
}

#[test]
fn a_closed_stdout_is_not_a_crash() {
    // stdout is a pipe whose reading end is already closed: every write
    // fails with EPIPE, as with `scsync schema | head -0`.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scsync"))
        .arg("schema")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn import_never_overwrites_a_file_unless_forced() {
    let world = World::new(base_seed());
    world.manifest("").login();
    let target = world.manifest_path();
    let before = std::fs::read_to_string(&target).unwrap();
    let out = world
        .scsync(["import", "--output", target.to_str().unwrap()])
        .expect(1);
    assert!(out.stderr().contains("--force"), "{}", out.stderr());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), before);
}

#[test]
fn the_demo_plans_applies_and_ends_with_no_changes() {
    let world = World::new(base_seed());
    let out = world.scsync(["demo"]).expect(0).stdout();
    assert!(
        out.contains("Plan: 6 to add, 0 to change, 0 to remove."),
        "{out}"
    );
    assert!(out.contains("Apply: 6 done, 0 failed, 0 skipped."), "{out}");
    assert!(
        out.trim_end()
            .ends_with("No changes. The account matches the manifest."),
        "{out}"
    );
}

#[test]
fn every_unknown_url_is_reported_in_one_run_with_its_place() {
    let world = World::new(base_seed());
    world
        .manifest(
            "follows:\n  - https://soundcloud.com/nobody-here\n  - https://soundcloud.com/bob\nlikes:\n  tracks: [https://soundcloud.com/bob/no-such-track]\n",
        )
        .login();
    let out = world.scsync(["plan"]).expect(1);
    let stderr = out.stderr();
    assert!(stderr.contains("2 URL(s)"), "{stderr}");
    let manifest = world.manifest_path();
    let file = manifest.display();
    // The manifest starts with the harness's account and policy lines.
    let text = std::fs::read_to_string(&manifest).unwrap();
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    assert!(
        stderr.contains(&format!(
            "{file}:{}:5: error: https://soundcloud.com/nobody-here",
            line_of("nobody-here")
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{file}:{}:12: error: https://soundcloud.com/bob/no-such-track",
            line_of("no-such-track")
        )),
        "{stderr}"
    );
}
