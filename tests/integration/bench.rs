//! Benchmarks, not tests: `cargo test --test integration bench -- --ignored --nocapture`.
//! They print numbers for the issue notes and assert only correctness.

use std::fmt::Write as _;
use std::time::Instant;

use serde_json::{Value, json};

use crate::support::{CLIENT_ID, CLIENT_SECRET, World};

/// An account with 10,000 liked tracks, 2,000 follows, 100 playlists of 20
/// tracks and 50 own tracks, all already matching the manifest: how many
/// requests does a no-change `plan` make, how long does it take, how much
/// memory does it use?
#[test]
#[ignore = "benchmark"]
fn no_change_plan_of_a_large_account() {
    let (users, tracks, playlists, likes, follows) =
        (2_100u64, 10_050u64, 100u64, 10_000u64, 2_000u64);
    let mut seed = json!({
        "apps": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                  "redirect_uris": ["http://127.0.0.1/callback"]}],
        "me": 1,
    });
    seed["users"] = (1..=users)
        .map(|id| json!({"id": id, "permalink": format!("user{id}"), "username": format!("User {id}")}))
        .collect();
    // Tracks 1..=50 are the account's own; the rest belong to others.
    seed["tracks"] = (1..=tracks)
        .map(|id| {
            let owner = if id <= 50 { 1 } else { 2 + id % (users - 1) };
            json!({"id": id, "user_id": owner, "title": format!("Track {id}"),
                   "permalink": format!("track-{id}"), "access": "playable", "sharing": "public"})
        })
        .collect();
    seed["playlists"] = (1..=playlists)
        .map(|id| {
            let members: Vec<u64> = (0..20)
                .map(|i| 51 + (id * 20 + i) % (tracks - 50))
                .collect();
            json!({"id": 500_000 + id, "user_id": 1, "title": format!("List {id}"),
                   "permalink": format!("list-{id}"), "sharing": "public",
                   "set_type": "playlist", "tracks": members})
        })
        .collect();
    seed["followings"] = json!({"1": (2..2 + follows).collect::<Vec<u64>>()});
    seed["likes"] =
        json!({"1": {"tracks": (51..51 + likes).collect::<Vec<u64>>(), "playlists": []}});

    let mut manifest = String::from("tracks:\n");
    for id in 1..=50 {
        let _ = writeln!(
            manifest,
            "  - key: t{id}\n    adopt: soundcloud:tracks:{id}\n    title: Track {id}"
        );
    }
    manifest.push_str("playlists:\n");
    for p in seed["playlists"].as_array().unwrap() {
        let _ = writeln!(
            manifest,
            "  - key: l{id}\n    adopt: soundcloud:playlists:{id}\n    title: {title}\n    tracks:",
            id = p["id"],
            title = p["title"].as_str().unwrap()
        );
        for t in p["tracks"].as_array().unwrap() {
            let _ = writeln!(manifest, "      - soundcloud:tracks:{t}");
        }
    }
    manifest.push_str("follows:\n");
    for id in 2..2 + follows {
        let _ = writeln!(manifest, "  - soundcloud:users:{id}");
    }
    manifest.push_str("likes:\n  tracks:\n");
    for id in 51..51 + likes {
        let _ = writeln!(manifest, "    - soundcloud:tracks:{id}");
    }

    let world = World::new(seed);
    world.manifest(&manifest).login();
    // The first apply only adopts (state, plus a read per adopted object).
    world.scsync(["apply", "--yes"]).expect(0);
    world.clear_requests();

    let started = Instant::now();
    let timed = std::process::Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_scsync"))
        .args(["plan", "-c"])
        .arg(world.manifest_path())
        .arg("--state")
        .arg(world.state_path())
        .output();
    let wall = started.elapsed();
    let requests = world.requests();
    let (status, stdout, stderr) = match timed {
        Ok(out) => (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        Err(e) => panic!("cannot run /usr/bin/time: {e}"),
    };
    assert_eq!(status, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("No changes"), "{stdout}");
    let peak = stderr
        .lines()
        .find(|l| l.contains("Maximum resident set size"))
        .unwrap_or("Maximum resident set size: unknown");
    let by_path = |prefix: &str| {
        requests
            .iter()
            .filter(|r| r["path"].as_str().is_some_and(|p| p.starts_with(prefix)))
            .count()
    };
    let minimum = 1
        + 50usize.div_ceil(200)
        + 100usize.div_ceil(200)
        + (follows as usize).div_ceil(200)
        + (likes as usize).div_ceil(200)
        + 1;
    println!("no-change plan of 50 tracks, 100 playlists x 20, 2,000 follows, 10,000 likes:");
    println!(
        "  requests: {} (minimum one per 200 items plus /me: {minimum})",
        requests.len()
    );
    println!(
        "  by path: /me {}, /me/tracks {}, /me/playlists {}, /playlists/*/tracks {}, /me/followings {}, /me/likes {}",
        requests.iter().filter(|r| r["path"] == "/me").count(),
        by_path("/me/tracks"),
        by_path("/me/playlists"),
        by_path("/playlists/"),
        by_path("/me/followings"),
        by_path("/me/likes")
    );
    println!(
        "  wall time: {:.2} s (debug build, emulator in the same machine)",
        wall.as_secs_f64()
    );
    println!("  {}", peak.trim());
    let writes: Vec<&Value> = requests.iter().filter(|r| r["method"] != "GET").collect();
    assert!(writes.is_empty(), "{writes:?}");
}
