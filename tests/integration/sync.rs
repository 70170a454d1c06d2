//! The main job end to end: manifest -> pull -> diff -> plan -> apply.

use serde_json::Value;

use crate::support::{World, base_seed};

/// Two tracks, a playlist mixing them with others' tracks (one of them
/// blocked), a follow and likes.
const MANIFEST: &str = r#"
tracks:
  - key: night-drive
    file: audio/night-drive.wav
    title: Night Drive
    tags: [synthwave, late night]
    sharing: public
  - key: sunrise
    file: audio/sunrise.wav
    title: Sunrise
    sharing: private
playlists:
  - key: best-of
    title: Best of
    sharing: public
    set_type: album
    tracks:
      - night-drive
      - soundcloud:tracks:101
      - https://soundcloud.com/bob/tide
      - sunrise
follows:
  - https://soundcloud.com/bob
likes:
  tracks: [soundcloud:tracks:101, soundcloud:tracks:102]
  playlists: [soundcloud:playlists:200]
"#;

fn world() -> World {
    let world = World::new(base_seed());
    world
        .wav("audio/night-drive.wav", 220.0)
        .wav("audio/sunrise.wav", 330.0)
        .manifest(MANIFEST)
        .login();
    world
}

fn my_tracks(state: &Value) -> Vec<&Value> {
    state["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["user_id"] == 1)
        .collect()
}

fn track_titled<'a>(state: &'a Value, title: &str) -> &'a Value {
    my_tracks(state)
        .into_iter()
        .find(|t| t["title"] == title)
        .unwrap_or_else(|| panic!("no track titled {title} in {state:#}"))
}

fn my_playlist<'a>(state: &'a Value, title: &str) -> &'a Value {
    state["playlists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["user_id"] == 1 && p["title"] == title)
        .unwrap_or_else(|| panic!("no playlist titled {title} in {state:#}"))
}

/// The numbers in a JSON array; an absent list (null) is empty.
fn ids(v: &Value) -> Vec<u64> {
    match v {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().map(|x| x.as_u64().unwrap()).collect(),
        other => panic!("not a list of ids: {other}"),
    }
}

#[test]
fn a_fresh_account_gets_everything_and_a_second_apply_sends_no_write() {
    let world = world();
    let plan = world.scsync(["plan"]).expect(0).stdout();
    assert!(plan.contains("+ track     night-drive"), "{plan}");
    assert!(
        plan.contains("Plan: 7 to add, 0 to change, 0 to remove."),
        "{plan}"
    );

    world.scsync(["apply", "--yes"]).expect(0);
    let state = world.emulator_state();
    let night = track_titled(&state, "Night Drive");
    let sunrise = track_titled(&state, "Sunrise");
    assert_eq!(my_tracks(&state).len(), 2);
    assert_eq!(night["tag_list"], "synthwave \"late night\"");
    assert_eq!(sunrise["sharing"], "private");
    let wav = std::fs::read(world.path("audio/night-drive.wav")).unwrap();
    assert_eq!(night["asset_size"], wav.len() as u64);

    let playlist = my_playlist(&state, "Best of");
    let night_id = night["id"].as_u64().unwrap();
    let sunrise_id = sunrise["id"].as_u64().unwrap();
    assert_eq!(
        ids(&playlist["tracks"]),
        vec![night_id, 101, 100, sunrise_id]
    );
    assert_eq!(ids(&state["followings"]["1"]), vec![2]);
    let mut liked = ids(&state["likes"]["1"]["tracks"]);
    liked.sort();
    assert_eq!(liked, vec![101, 102]);
    assert_eq!(ids(&state["likes"]["1"]["playlists"]), vec![200]);

    world.clear_requests();
    let second = world.scsync(["apply", "--yes"]).expect(0).stdout();
    assert!(second.contains("No changes"), "{second}");
    assert_eq!(world.writes(), Vec::<Value>::new());
}

#[test]
fn an_edited_title_changes_in_place_without_a_re_upload() {
    let world = world();
    world.scsync(["apply", "--yes"]).expect(0);
    let before = world.emulator_state();
    let old = track_titled(&before, "Night Drive").clone();

    world.manifest(&MANIFEST.replace("title: Night Drive", "title: Night Drive (Remaster)"));
    let plan = world.scsync(["plan"]).expect(0).stdout();
    assert!(
        plan.contains(r#"title: "Night Drive" -> "Night Drive (Remaster)""#),
        "{plan}"
    );
    world.clear_requests();
    world.scsync(["apply", "--yes"]).expect(0);

    let writes = world.writes();
    assert_eq!(writes.len(), 1, "{writes:#?}");
    assert_eq!(writes[0]["method"], "PUT");
    let after = world.emulator_state();
    let new = track_titled(&after, "Night Drive (Remaster)");
    assert_eq!(new["id"], old["id"]);
    assert_eq!(new["asset_sha256"], old["asset_sha256"]);
}

#[test]
fn a_playlist_keeps_its_blocked_track_across_edits() {
    let world = world();
    world.scsync(["apply", "--yes"]).expect(0);
    world.manifest(&MANIFEST.replace("title: Best of", "title: Best of 2026"));
    world.scsync(["apply", "--yes"]).expect(0);
    let state = world.emulator_state();
    let playlist = my_playlist(&state, "Best of 2026");
    assert!(ids(&playlist["tracks"]).contains(&101), "{playlist:#}");
    assert_eq!(ids(&playlist["tracks"]).len(), 4);
}

#[test]
fn liked_blocked_tracks_show_no_change() {
    let mut seed = base_seed();
    seed["likes"]["1"]["tracks"] = serde_json::json!([101]);
    let world = World::new(seed);
    world
        .manifest("likes:\n  tracks: [soundcloud:tracks:101]\n")
        .login();
    let plan = world.scsync(["plan"]).expect(0).stdout();
    assert!(plan.contains("No changes"), "{plan}");
}

#[test]
fn prune_off_leaves_unlisted_follows() {
    let mut seed = base_seed();
    seed["followings"]["1"] = serde_json::json!([2, 3]);
    let world = World::new(seed);
    world.manifest("follows: [soundcloud:users:2]\n").login();
    world.scsync(["apply", "--yes"]).expect(0);
    let mut following = ids(&world.emulator_state()["followings"]["1"]);
    following.sort();
    assert_eq!(following, vec![2, 3]);
}

#[test]
fn prune_on_over_max_deletes_is_refused_and_changes_nothing() {
    let mut seed = base_seed();
    seed["followings"]["1"] = serde_json::json!([2, 3]);
    let world = World::new(seed);
    world
        .manifest("policy:\n  prune: { follows: true }\n  max_deletes: 1\nfollows: []\n")
        .login();
    world.clear_requests();
    let out = world.scsync(["apply", "--yes"]).expect(3);
    assert!(out.stderr().contains("max_deletes"), "{}", out.stderr());
    assert_eq!(world.writes(), Vec::<Value>::new());
    assert_eq!(ids(&world.emulator_state()["followings"]["1"]).len(), 2);

    // Within the limit, prune removes them.
    world.manifest("policy:\n  prune: { follows: true }\n  max_deletes: 2\nfollows: []\n");
    world.scsync(["apply", "--yes"]).expect(0);
    assert!(ids(&world.emulator_state()["followings"]["1"]).is_empty());
}

#[test]
fn plan_and_dry_run_send_no_write_and_print_the_same() {
    let world = world();
    world.clear_requests();
    let plan = world.scsync(["plan"]).expect(0).stdout();
    let dry = world.scsync(["apply", "--dry-run"]).expect(0).stdout();
    assert_eq!(plan, dry);
    assert_eq!(world.writes(), Vec::<Value>::new());
    assert!(!world.requests().is_empty(), "plan did read the account");
}

#[test]
fn detailed_exitcode_says_whether_changes_are_pending() {
    let world = world();
    world.scsync(["plan", "--detailed-exitcode"]).expect(2);
    world.scsync(["apply", "--yes"]).expect(0);
    world.scsync(["plan", "--detailed-exitcode"]).expect(0);
}

#[test]
fn apply_without_yes_and_without_a_terminal_refuses() {
    let world = world();
    world.clear_requests();
    let out = world.scsync(["apply"]).expect(1);
    assert!(out.stderr().contains("--yes"), "{}", out.stderr());
    assert_eq!(world.writes(), Vec::<Value>::new());
}

#[test]
fn a_saved_plan_applies_exactly_and_is_refused_once_stale() {
    let world = world();
    let saved = world.path("plan.json");
    let saved = saved.to_str().unwrap();
    world
        .scsync(["plan", "--format", "json", "--out", saved])
        .expect(0);
    let json: Value = serde_json::from_str(&std::fs::read_to_string(saved).unwrap()).unwrap();
    assert_eq!(json["format_version"], 1);
    assert_eq!(json["summary"]["add"], 7);
    world.scsync(["apply", "--yes", "--plan", saved]).expect(0);
    assert_eq!(my_tracks(&world.emulator_state()).len(), 2);

    // The account changed since: the same plan is refused.
    let out = world.scsync(["apply", "--yes", "--plan", saved]).expect(1);
    assert!(out.stderr().contains("changed since"), "{}", out.stderr());
}

#[test]
fn an_edited_saved_plan_is_refused_and_sends_nothing() {
    let mut seed = base_seed();
    seed["followings"]["1"] = serde_json::json!([3]);
    let world = World::new(seed);
    world.manifest("follows: [soundcloud:users:2]\n").login();
    let saved = world.path("plan.json");
    let saved = saved.to_str().unwrap();
    world.scsync(["plan", "--out", saved]).expect(0);
    // Slip an unfollow into the plan (prune is off).
    let mut plan: Value = serde_json::from_str(&std::fs::read_to_string(saved).unwrap()).unwrap();
    plan["actions"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
        "op": "remove", "kind": "follow", "key": "soundcloud:users:3",
        "urn": "soundcloud:users:3", "request": {"type": "unfollow"}}));
    std::fs::write(saved, plan.to_string()).unwrap();
    world.clear_requests();
    let out = world.scsync(["apply", "--yes", "--plan", saved]).expect(1);
    assert!(
        out.stderr().contains("no longer matches"),
        "{}",
        out.stderr()
    );
    assert_eq!(world.writes(), Vec::<Value>::new());
}

#[test]
fn a_saved_plan_is_refused_once_its_audio_changed() {
    let world = world();
    let saved = world.path("plan.json");
    let saved = saved.to_str().unwrap();
    world.scsync(["plan", "--out", saved]).expect(0);
    world.wav("audio/sunrise.wav", 660.0);
    world.clear_requests();
    world.scsync(["apply", "--yes", "--plan", saved]).expect(1);
    assert_eq!(world.writes(), Vec::<Value>::new());
}
