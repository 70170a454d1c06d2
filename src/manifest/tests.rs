//! Tests of loading, validation, credentials and the JSON Schema.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::model::{
    DesiredPlaylist, DesiredTrack, FieldValue, Fields, OnAudioChange, Prune, Reference, Urn,
};

/// Writes a small valid WAV file (8 kHz mono 16-bit, 64 samples of silence).
fn write_wav(path: &Path) {
    let samples = 64u32;
    let data_len = samples * 2;
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
    bytes.extend_from_slice(&1u16.to_le_bytes()); // mono
    bytes.extend_from_slice(&8000u32.to_le_bytes());
    bytes.extend_from_slice(&16000u32.to_le_bytes());
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&16u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&data_len.to_le_bytes());
    bytes.resize(bytes.len() + data_len as usize, 0);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, bytes).unwrap();
}

/// A temporary folder holding audio and artwork the manifests name.
struct Folder {
    dir: tempfile::TempDir,
}

impl Folder {
    fn new() -> Folder {
        let folder = Folder {
            dir: tempfile::tempdir().unwrap(),
        };
        write_wav(&folder.path("audio/night-drive.wav"));
        write_wav(&folder.path("audio/sunrise.wav"));
        fs::create_dir_all(folder.path("art")).unwrap();
        fs::write(
            folder.path("art/night-drive.jpg"),
            b"\xff\xd8\xff\xe0 not really a jpeg",
        )
        .unwrap();
        folder
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path(relative);
        fs::write(&path, text).unwrap();
        path
    }
}

fn errors_of(path: &Path) -> ManifestErrors {
    match load(path) {
        Ok(_) => panic!("{} loaded, but errors were expected", path.display()),
        Err(errors) => errors,
    }
}

/// Diagnostics as `LINE:COL: MESSAGE` (the file left out).
fn located(errors: &ManifestErrors) -> Vec<String> {
    errors
        .diagnostics
        .iter()
        .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
        .collect()
}

const GOOD: &str = r#"version: 1
account:
  client_id: ${SOUNDCLOUD_CLIENT_ID}
  client_secret_file: secret.txt
  api_url: http://127.0.0.1:8080/
policy:
  prune: { tracks: true, follows: true }
  max_deletes: 3
  on_audio_change: replace
  concurrency: 2
daemon:
  schedule: "0 */15 * * * *"
  timezone: Europe/Berlin
  watch: false
  listen: 127.0.0.1:9090
tracks:
  - key: night-drive
    file: audio/night-drive.wav
    title: Night Drive
    description: |
      Recorded live.
    genre: Electronic
    tags: [synthwave, " late night ", 2026]
    sharing: public
    downloadable: false
    license: cc-by
    artwork: art/night-drive.jpg
  - key: sunrise
    file: ./audio/sunrise.wav
    title: 1999
  - key: old-upload
    adopt: soundcloud:tracks:555
    sharing: private
playlists:
  - key: best-of
    title: Best of 2026
    set_type: album
    tracks:
      - night-drive
      - soundcloud:tracks:987654
      - https://soundcloud.com/someone/a-track?si=xyz
  - key: adopted-set
    adopt: soundcloud:playlists:77
follows:
  - https://soundcloud.com/someone
  - soundcloud:users:42
likes:
  tracks: [https://soundcloud.com/someone/a-track]
  playlists: [soundcloud:playlists:77]
"#;

fn text(value: &str) -> FieldValue {
    FieldValue::Text(value.to_owned())
}

#[test]
fn a_good_manifest_loads_into_exactly_what_it_says() {
    let folder = Folder::new();
    let path = folder.write("scsync.yaml", GOOD);
    let manifest = load(&path).unwrap_or_else(|e| panic!("{e}"));
    let base = folder.dir.path();

    assert_eq!(manifest.files, vec![path.clone()]);
    assert_eq!(manifest.base_dir, base);
    assert!(manifest.digest.starts_with("sha256:"));
    assert_eq!(manifest.digest.len(), "sha256:".len() + 64);

    assert_eq!(
        manifest.policy,
        Policy {
            prune: Prune {
                tracks: true,
                playlists: false,
                follows: true,
                likes: false,
            },
            max_deletes: 3,
            on_audio_change: OnAudioChange::Replace,
            concurrency: 2,
            ..Policy::default()
        }
    );
    assert_eq!(
        manifest.daemon,
        DaemonSettings {
            schedule: Some("0 */15 * * * *".into()),
            timezone: Some("Europe/Berlin".into()),
            watch: false,
            listen: Some("127.0.0.1:9090".parse().unwrap()),
        }
    );
    assert_eq!(manifest.account.api_url(), "http://127.0.0.1:8080");
    assert_eq!(manifest.account.auth_url(), DEFAULT_AUTH_URL);

    let night_drive_fields: Fields = [
        ("title", text("Night Drive")),
        ("description", text("Recorded live.\n")),
        ("genre", text("Electronic")),
        (
            "tags",
            FieldValue::Tags(vec!["synthwave".into(), "late night".into(), "2026".into()]),
        ),
        ("sharing", text("public")),
        ("downloadable", FieldValue::Bool(false)),
        ("license", text("cc-by")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let expected = Desired {
        tracks: vec![
            DesiredTrack {
                key: "night-drive".into(),
                file: base.join("audio/night-drive.wav"),
                file_display: "audio/night-drive.wav".into(),
                artwork: Some(base.join("art/night-drive.jpg")),
                adopt: None,
                fields: night_drive_fields,
            },
            DesiredTrack {
                key: "sunrise".into(),
                file: base.join("./audio/sunrise.wav"),
                file_display: "./audio/sunrise.wav".into(),
                artwork: None,
                adopt: None,
                // A number written as a title is the title as written.
                fields: [("title".to_owned(), text("1999"))].into_iter().collect(),
            },
            DesiredTrack {
                key: "old-upload".into(),
                file: PathBuf::new(),
                file_display: String::new(),
                artwork: None,
                adopt: Some(Urn::track(555)),
                fields: [("sharing".to_owned(), text("private"))]
                    .into_iter()
                    .collect(),
            },
        ],
        playlists: vec![
            DesiredPlaylist {
                key: "best-of".into(),
                adopt: None,
                fields: [
                    ("title".to_owned(), text("Best of 2026")),
                    ("set_type".to_owned(), text("album")),
                ]
                .into_iter()
                .collect(),
                tracks: vec![
                    Reference::Key("night-drive".into()),
                    Reference::Urn(Urn::track(987_654)),
                    Reference::Url("https://soundcloud.com/someone/a-track".into()),
                ],
            },
            DesiredPlaylist {
                key: "adopted-set".into(),
                adopt: Some(Urn::playlist(77)),
                fields: Fields::new(),
                tracks: vec![],
            },
        ],
        follows: vec![
            Reference::Url("https://soundcloud.com/someone".into()),
            Reference::Urn(Urn::user(42)),
        ],
        liked_tracks: vec![Reference::Url(
            "https://soundcloud.com/someone/a-track".into(),
        )],
        liked_playlists: vec![Reference::Urn(Urn::playlist(77))],
    };
    assert_eq!(manifest.desired, expected);
}

#[test]
fn defaults_apply_when_sections_are_left_out() {
    let folder = Folder::new();
    let path = folder.write("m.yaml", "version: 1\naccount:\n  client_id: demo\n");
    let manifest = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.policy, Policy::default());
    assert_eq!(manifest.daemon, DaemonSettings::default());
    assert!(manifest.daemon.watch);
    assert_eq!(manifest.desired, Desired::default());
    assert_eq!(manifest.account.api_url(), DEFAULT_API_URL);
}

#[test]
fn empty_sections_mean_empty_lists() {
    let folder = Folder::new();
    let path = folder.write(
        "m.yaml",
        "version: 1\naccount:\n  client_id: demo\ntracks:\nfollows:\n# - soundcloud:users:1\nlikes:\n",
    );
    let manifest = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.desired, Desired::default());
}

#[test]
fn the_digest_changes_with_the_content_and_only_with_it() {
    let folder = Folder::new();
    let path = folder.write("m.yaml", "version: 1\naccount:\n  client_id: demo\n");
    let first = load(&path).unwrap().digest;
    assert_eq!(load(&path).unwrap().digest, first);
    folder.write("m.yaml", "version: 1\naccount:\n  client_id: other\n");
    assert_ne!(load(&path).unwrap().digest, first);
}

#[test]
fn a_directory_of_files_is_merged_in_name_order() {
    let folder = Folder::new();
    let dir = folder.path("manifest");
    fs::create_dir(&dir).unwrap();
    // Paths are relative to the directory holding the files.
    write_wav(&dir.join("audio/a.wav"));
    fs::write(
        dir.join("00-account.yaml"),
        "version: 1\naccount:\n  client_id: demo\nfollows: [soundcloud:users:1]\n",
    )
    .unwrap();
    fs::write(
        dir.join("10-tracks.yml"),
        "version: 1\ntracks:\n  - key: a\n    file: audio/a.wav\n    title: A\n\
         follows: [soundcloud:users:2]\n",
    )
    .unwrap();
    fs::write(
        dir.join("20-playlists.yaml"),
        "version: 1\nplaylists:\n  - key: set\n    title: Set\n    tracks: [a]\n",
    )
    .unwrap();
    // Not manifest files: ignored.
    fs::write(dir.join("notes.txt"), "not yaml").unwrap();
    fs::write(dir.join(".#20-playlists.yaml"), "lock file").unwrap();

    let manifest = load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<_> = manifest
        .files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["00-account.yaml", "10-tracks.yml", "20-playlists.yaml"]
    );
    assert_eq!(manifest.base_dir, dir);
    assert_eq!(manifest.desired.tracks[0].file, dir.join("audio/a.wav"));
    assert_eq!(
        manifest.desired.playlists[0].tracks,
        vec![Reference::Key("a".into())]
    );
    assert_eq!(
        manifest.desired.follows,
        vec![Reference::Urn(Urn::user(1)), Reference::Urn(Urn::user(2))]
    );
}

#[test]
fn duplicates_across_files_are_located_in_the_later_file() {
    let folder = Folder::new();
    let dir = folder.path("manifest");
    fs::create_dir(&dir).unwrap();
    write_wav(&dir.join("a.wav"));
    let track = "  - key: a\n    file: a.wav\n    title: A\n";
    fs::write(
        dir.join("1.yaml"),
        format!(
            "version: 1\naccount:\n  client_id: x\ntracks:\n{track}follows: [soundcloud:users:1]\n"
        ),
    )
    .unwrap();
    fs::write(
        dir.join("2.yaml"),
        format!(
            "version: 1\naccount:\n  client_id: y\ntracks:\n{track}follows: [soundcloud:users:1]\n"
        ),
    )
    .unwrap();
    let errors = errors_of(&dir);
    let first = dir.join("1.yaml");
    let second = dir.join("2.yaml");
    let messages: Vec<String> = errors.diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        vec![
            format!(
                "{}:2:1: error: `account` is already set in {}:2:1; write each section in one file only",
                second.display(),
                first.display()
            ),
            format!(
                "{}:5:10: error: duplicate track key `a` (first at {}:5:10); keys are unique per kind",
                second.display(),
                first.display()
            ),
            format!(
                "{}:8:11: error: `follows` item: soundcloud:users:1 is already listed at {}:8:11",
                second.display(),
                first.display()
            ),
        ]
    );
}

#[test]
fn a_directory_without_manifest_files_is_an_error() {
    let folder = Folder::new();
    let errors = errors_of(&folder.path("art"));
    assert_eq!(errors.diagnostics.len(), 1);
    assert!(
        errors.diagnostics[0]
            .message
            .contains("holds no *.yaml or *.yml file")
    );
    assert_eq!(errors.diagnostics[0].line, 0);
}

#[test]
fn a_missing_manifest_is_reported_without_a_position() {
    let errors = errors_of(Path::new("/nonexistent/scsync.yaml"));
    assert_eq!(
        errors.to_string(),
        format!(
            "/nonexistent/scsync.yaml: error: cannot read the manifest: {}",
            std::io::Error::from(std::io::ErrorKind::NotFound)
        )
        .replace("entity not found", "No such file or directory (os error 2)")
    );
}

#[test]
fn the_error_output_is_one_located_line_per_problem_sorted() {
    let path = Path::new("tests/fixtures/manifests/broken/36-many-problems-at-once.yaml");
    let errors = errors_of(path);
    let shown = path.display();
    let expected = [
        "14:14: error: `sharing`: \"hidden\" is not one of public, private",
        "15:12: error: `genre`: expected text, found a list",
        "16:5: error: unknown key `colour` in a track; expected one of: key, file, artwork, \
         adopt, title, description, genre, tags, sharing, downloadable, streamable, \
         commentable, license, label_name, purchase_url, release, isrc, embeddable_by, \
         permalink, reveal_stats, reveal_comments",
        "20:27: error: `tracks` item: \"soundcloud:tracks:x\" is not a valid URN \
         (soundcloud:tracks|playlists|users:NUMBER); expected a manifest track key, \
         soundcloud:tracks:N, or https://soundcloud.com/USER/TRACK",
        "20:48: error: `tracks` item: no track in the manifest has the key `day-drive`; \
         list the track under `tracks`, or refer to it by URN or soundcloud.com URL",
    ]
    .map(|line| format!("{shown}:{line}"))
    .join("\n");
    assert_eq!(errors.to_string(), expected);
}

/// One expectation from a fixture's `# expect: LINE:COL: FRAGMENT` comment.
struct Expect {
    line: usize,
    column: usize,
    fragment: String,
}

fn expectations(text: &str) -> Vec<Expect> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|rest| {
            let mut parts = rest.splitn(3, ':');
            let line = parts.next().unwrap().trim().parse().unwrap();
            let column = parts.next().unwrap().trim().parse().unwrap();
            let fragment = parts.next().unwrap().trim().to_owned();
            Expect {
                line,
                column,
                fragment,
            }
        })
        .collect()
}

/// Every broken manifest fails with exactly the located messages its
/// `# expect:` comments name, and nothing else.
#[test]
fn every_broken_manifest_gives_its_located_messages() {
    let dir = Path::new("tests/fixtures/manifests/broken");
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "the corpus holds {} files", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        let expects = expectations(&text);
        assert!(
            !expects.is_empty(),
            "{} has no `# expect:` line",
            file.display()
        );
        let errors = match load(file) {
            Ok(_) => {
                failures.push(format!("{}: loaded without errors", file.display()));
                continue;
            }
            Err(errors) => errors,
        };
        for d in &errors.diagnostics {
            assert_eq!(&d.file, file, "diagnostics name the file they concern");
        }
        for expect in &expects {
            let found = errors.diagnostics.iter().any(|d| {
                d.line == expect.line
                    && d.column == expect.column
                    && d.message.contains(&expect.fragment)
            });
            if !found {
                failures.push(format!(
                    "{}: expected {}:{}: {:?}, got:\n{errors}",
                    file.display(),
                    expect.line,
                    expect.column,
                    expect.fragment
                ));
            }
        }
        if errors.diagnostics.len() != expects.len() {
            failures.push(format!(
                "{}: expected {} diagnostics, got {}:\n{errors}",
                file.display(),
                expects.len(),
                errors.diagnostics.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn yaml_duplicate_keys_do_not_stop_the_rest_of_the_check() {
    let folder = Folder::new();
    let path = folder.write(
        "m.yaml",
        "version: 1\naccount:\n  client_id: a\n  client_id: b\npolicy:\n  concurrency: many\n",
    );
    assert_eq!(
        located(&errors_of(&path)),
        [
            "4:3: duplicate key `client_id` (first at line 3, column 3); a key may appear once per mapping",
            "6:16: `policy.concurrency`: expected a whole number from 1 to 32, found the text \"many\"",
        ]
    );
}

#[test]
fn anchors_aliases_and_merge_keys_work() {
    let folder = Folder::new();
    let path = folder.write(
        "m.yaml",
        "version: 1\naccount:\n  client_id: demo\n\
         x-defaults: &defaults\n  sharing: private\n  license: cc-by\n",
    );
    // An unknown top-level key is still unknown, anchors or not.
    assert!(located(&errors_of(&path))[0].contains("unknown key `x-defaults`"));

    let path = folder.write(
        "m.yaml",
        "version: 1\naccount:\n  client_id: demo\ntracks:\n\
         \x20 - &first\n    key: night-drive\n    file: audio/night-drive.wav\n    title: Night\n    sharing: private\n    license: cc-by\n\
         \x20 - <<: *first\n    key: sunrise\n    file: audio/sunrise.wav\n\
         playlists:\n  - key: p\n    title: P\n    tracks: &list [night-drive, sunrise]\n\
         \x20 - key: q\n    title: Q\n    tracks: *list\n",
    );
    let manifest = load(&path).unwrap_or_else(|e| panic!("{e}"));
    let sunrise = &manifest.desired.tracks[1];
    assert_eq!(sunrise.key, "sunrise");
    assert_eq!(sunrise.file_display, "audio/sunrise.wav");
    assert_eq!(sunrise.fields.get("title"), Some(&text("Night")));
    assert_eq!(sunrise.fields.get("license"), Some(&text("cc-by")));
    assert_eq!(
        manifest.desired.playlists[1].tracks,
        manifest.desired.playlists[0].tracks
    );
}

#[test]
fn yaml_tags_other_than_str_are_refused_and_str_makes_text() {
    let folder = Folder::new();
    let path = folder.write("m.yaml", "version: 1\naccount:\n  client_id: !!str 12345\n");
    let manifest = load(&path).unwrap_or_else(|e| panic!("{e}"));
    let creds = manifest.account.credentials_from(|_| None).unwrap();
    assert_eq!(creds.client_id, "12345");

    let path = folder.write("m.yaml", "version: 1\naccount: !secret\n  client_id: x\n");
    let errors = located(&errors_of(&path));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("the YAML tag !secret is not supported"),
        "{errors:?}"
    );
}

#[test]
fn a_number_where_a_key_is_expected_asks_for_quotes() {
    let folder = Folder::new();
    let path = folder.write(
        "m.yaml",
        "version: 1\naccount: {client_id: demo}\nplaylists:\n  - key: 2024\n    title: T\n",
    );
    let errors = located(&errors_of(&path));
    assert_eq!(
        errors,
        [
            "4:10: `key`: expected a key (lowercase letters, digits, '.', '_' or '-'), \
          found the number 2024; write it in quotes (\"2024\") to mean text"
        ]
    );
}

#[test]
fn a_missing_audio_file_names_where_it_looked() {
    let folder = Folder::new();
    let path = folder.write(
        "m.yaml",
        "version: 1\naccount: {client_id: demo}\ntracks:\n  - key: a\n    file: gone.wav\n    title: A\n",
    );
    let errors = errors_of(&path);
    let message = &errors.diagnostics[0].message;
    assert!(
        message.starts_with("audio file `gone.wav` does not exist (looked at "),
        "{message}"
    );
    assert!(
        message.contains(&folder.path("gone.wav").display().to_string()),
        "{message}"
    );
}

#[test]
fn an_empty_audio_file_is_refused() {
    let folder = Folder::new();
    fs::write(folder.path("empty.wav"), b"").unwrap();
    let path = folder.write(
        "m.yaml",
        "version: 1\naccount: {client_id: demo}\ntracks:\n  - key: a\n    file: empty.wav\n    title: A\n",
    );
    assert!(located(&errors_of(&path))[0].starts_with("5:11: audio file `empty.wav` is empty"));
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_without_blocking() {
    let folder = Folder::new();
    let fifo = folder.path("pipe.wav");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        return; // no mkfifo here: nothing to test
    }
    let path = folder.write(
        "m.yaml",
        "version: 1\naccount: {client_id: demo}\ntracks:\n  - key: a\n    file: pipe.wav\n    title: A\n",
    );
    assert!(located(&errors_of(&path))[0].contains("is not a regular file"));
}

#[test]
fn a_file_that_is_not_utf8_is_located_at_the_first_bad_byte() {
    let folder = Folder::new();
    let path = folder.path("m.yaml");
    fs::write(&path, b"version: 1\naccount:\n  client_id: d\xffmo\n").unwrap();
    assert_eq!(
        located(&errors_of(&path)),
        ["3:15: the file is not UTF-8 text; save it as UTF-8"]
    );
}

#[test]
fn empty_and_non_mapping_files_say_what_was_expected() {
    let folder = Folder::new();
    let path = folder.write("m.yaml", "# nothing yet\n");
    assert_eq!(
        located(&errors_of(&path)),
        ["1:1: the file holds no YAML; expected a manifest starting with `version: 1`"]
    );
    let path = folder.write("m.yaml", "- version: 1\n");
    assert_eq!(
        located(&errors_of(&path)),
        ["1:1: expected the manifest (a mapping starting with `version: 1`), found a list"]
    );
}

/// Truncations of a real manifest and assorted garbage must give errors (or
/// load), never panic or hang.
#[test]
fn truncated_or_garbage_input_never_panics() {
    let folder = Folder::new();
    let path = folder.path("m.yaml");
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for cut in (0..GOOD.len()).step_by(7) {
        inputs.push(GOOD.as_bytes()[..cut].to_vec());
    }
    for garbage in [
        "[[[[[[[[",
        "{{{{{{",
        "]]]]",
        ": : : :",
        "- - - - -",
        "&a [*a]",
        "*undefined",
        "? [a, b]\n: c",
        "version: 1\naccount: {client_id: demo}\ntracks: [&x {key: a}, *x, *x]",
        "\t\tversion: 1",
        "version: 1\n  bad indent: 2\n",
        "\"unterminated",
        "'also unterminated",
        "key: |\n  block\n more",
        "%YAML 1.2\n%YAML 1.2\n---\n",
        "!!binary aGVsbG8=",
        "version: 99999999999999999999999999",
        "version: 0x7fffffffffffffffff",
        "---\n...\n---\n",
        "\u{feff}version: 1",
        "version: 1\nfollows: !!set {a, b}",
        "@reserved",
        "`reserved",
        "\0\0\0",
    ] {
        inputs.push(garbage.as_bytes().to_vec());
    }
    inputs.push("[".repeat(100_000).into_bytes());
    inputs.push("a:\n".repeat(50_000).into_bytes());
    let many_keys: String = (0..20_000).map(|i| format!("k{i}: v\n")).collect();
    inputs.push(many_keys.into_bytes());
    inputs.push("- ".repeat(10_000).into_bytes());
    let mut nested = String::new();
    for depth in 0..200 {
        nested.push_str(&" ".repeat(depth * 2));
        nested.push_str("k:\n");
    }
    inputs.push(nested.into_bytes());
    // A billion-laughs style alias bomb.
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
        ));
    }
    inputs.push(bomb.into_bytes());
    // Pseudo-random bytes from a fixed seed.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..200 {
        let len = (state % 300) as usize;
        let mut bytes = Vec::with_capacity(len);
        for _ in 0..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let alphabet = b"ab:-[]{},&*!|>'\"#\n \t?%@`0123456789";
            bytes.push(alphabet[(state % alphabet.len() as u64) as usize]);
        }
        inputs.push(bytes);
    }
    for input in inputs {
        fs::write(&path, &input).unwrap();
        match load(&path) {
            Ok(_) => {}
            Err(errors) => {
                assert!(!errors.diagnostics.is_empty());
                for d in &errors.diagnostics {
                    assert!(!d.message.is_empty());
                    assert!(
                        !d.message.contains("please report this"),
                        "no located reason for {:?}",
                        String::from_utf8_lossy(&input)
                    );
                }
            }
        }
    }
}

#[test]
fn credentials_expand_variables_and_read_the_secret_file() {
    let folder = Folder::new();
    folder.write("secret.txt", "s3cret\n");
    let path = folder.write("scsync.yaml", GOOD);
    let manifest = load(&path).unwrap();
    let env = |name: &str| (name == "SOUNDCLOUD_CLIENT_ID").then(|| "my-app".to_owned());
    let creds = manifest.account.credentials_from(env).unwrap();
    assert_eq!(creds.client_id, "my-app");
    assert_eq!(
        creds.client_secret.as_ref().map(|s| s.expose()),
        Some("s3cret")
    );
    assert_eq!(creds.api_url, "http://127.0.0.1:8080");
    assert_eq!(creds.auth_url, DEFAULT_AUTH_URL);
    assert!(!format!("{creds:?}").contains("s3cret"));
}

#[test]
fn credentials_report_every_missing_variable_and_file_at_its_line() {
    let folder = Folder::new();
    let path = folder.write(
        "m.yaml",
        "version: 1\naccount:\n  client_id: ${SC_ID}\n  client_secret_file: ${CREDENTIALS_DIRECTORY}/none\n  api_url: ${API}\n",
    );
    let manifest = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.account.api_url(), "${API}");
    let dir = folder.dir.path().display().to_string();
    let env = |name: &str| match name {
        "CREDENTIALS_DIRECTORY" => Some(dir.clone()),
        "API" => Some("ftp://nope".to_owned()),
        _ => None,
    };
    let errors = manifest.account.credentials_from(env).unwrap_err();
    assert_eq!(
        located(&errors),
        [
            "3:14: `account.client_id`: the environment variable SC_ID is not set (or not UTF-8); set it, or write the value here".to_owned(),
            format!("4:23: `account.client_secret_file`: the secret file {dir}/none does not exist"),
            "5:12: `account.api_url`: \"ftp://nope\" is not an http(s) URL; expected a base URL such as https://api.soundcloud.com".to_owned(),
        ]
    );
}

#[test]
fn a_client_secret_from_the_environment_is_accepted_and_never_shown() {
    let folder = Folder::new();
    let path = folder.write(
        "m.yaml",
        "version: 1\naccount:\n  client_id: demo\n  client_secret: ${SC_SECRET}\n",
    );
    let manifest = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(!format!("{manifest:?}").contains("hunter2"));
    let creds = manifest
        .account
        .credentials_from(|n| (n == "SC_SECRET").then(|| "hunter2".to_owned()))
        .unwrap();
    assert_eq!(creds.client_secret.unwrap().expose(), "hunter2");
}

#[test]
fn a_literal_secret_is_never_repeated_in_the_error() {
    let path = Path::new("tests/fixtures/manifests/broken/18-literal-client-secret.yaml");
    let shown = errors_of(path).to_string();
    assert!(!shown.contains("s3cr3t-value"), "{shown}");

    // Not even when it looks like a number.
    let folder = Folder::new();
    let path = folder.write(
        "m.yaml",
        "version: 1\naccount:\n  client_id: demo\n  client_secret: 8675309\n",
    );
    let shown = errors_of(&path).to_string();
    assert!(!shown.contains("8675309"), "{shown}");
    assert!(shown.contains("the secret is written literally"), "{shown}");
}

#[test]
fn the_json_schema_is_generated_from_the_same_table() {
    let schema = json_schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["required"], serde_json::json!(["version"]));
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["properties"]["version"]["const"], 1);

    let track = &schema["properties"]["tracks"]["items"];
    assert_eq!(track["required"], serde_json::json!(["key"]));
    for (name, _) in crate::model::TRACK_FIELDS {
        assert!(track["properties"][name].is_object(), "track field {name}");
        assert!(
            track["properties"][name]["description"].is_string(),
            "track field {name} has a description"
        );
    }
    let playlist = &schema["properties"]["playlists"]["items"];
    for (name, _) in crate::model::PLAYLIST_FIELDS {
        assert!(
            playlist["properties"][name].is_object(),
            "playlist field {name}"
        );
    }
    assert_eq!(playlist["properties"]["tracks"]["maxItems"], 500);
    assert_eq!(schema["properties"]["follows"]["maxItems"], 2000);
    assert_eq!(
        track["properties"]["sharing"]["enum"],
        serde_json::json!(["public", "private"])
    );
    assert_eq!(
        track["properties"]["tags"]["type"],
        serde_json::json!(["array", "null"])
    );
    assert_eq!(
        schema["properties"]["policy"]["properties"]["max_deletes"]["default"],
        10
    );
    // Every pattern compiles.
    fn walk(value: &serde_json::Value, count: &mut usize) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(p)) = map.get("pattern") {
                    regex::Regex::new(p).unwrap();
                    *count += 1;
                }
                map.values().for_each(|v| walk(v, count));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, count)),
            _ => {}
        }
    }
    let mut patterns = 0;
    walk(&schema, &mut patterns);
    assert!(patterns >= 8, "{patterns} patterns");
}

#[test]
fn every_managed_field_has_a_written_description() {
    for (name, _) in crate::model::TRACK_FIELDS
        .iter()
        .chain(crate::model::PLAYLIST_FIELDS)
    {
        assert!(
            schema::METADATA_DOCS.iter().any(|(n, _)| n == name),
            "{name} needs a description in METADATA_DOCS"
        );
    }
}
