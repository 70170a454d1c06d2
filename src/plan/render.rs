//! Renders a [`Plan`] for people (text, markdown) and for programs (JSON).
//!
//! Text is one line per action: symbol (`+` add, `~` change, `-` remove,
//! `.` forget), kind, key, then what happens, with a summary line last.
//! Colour is the caller's decision (a terminal, and `NO_COLOR` unset).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::Value;

use crate::model::{FieldValue, ManagedKind};

use super::{Action, ActionKind, Change, Forget, Op, Plan, Request, list_delta};

const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const RED: &str = "\x1b[31m";
const CYAN: &str = "\x1b[36m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// Longest value (in characters) shown in a one-line description.
const MAX_VALUE_CHARS: usize = 48;

const NO_CHANGES: &str = "No changes. The account matches the manifest.";
const FORGET_TEXT: &str =
    "no longer in the manifest; scsync stops managing it (nothing is deleted)";

/// The plan as terminal text, `\n`-terminated.
pub fn text(plan: &Plan, color: bool) -> String {
    let paint = |code: &str, s: &str| {
        if color {
            format!("{code}{s}{RESET}")
        } else {
            s.to_owned()
        }
    };
    let key_width = key_column_width(plan);
    let mut out = String::new();
    for action in &plan.actions {
        let (symbol, code) = match action.op {
            Op::Add => ("+", GREEN),
            Op::Change => ("~", YELLOW),
            Op::Remove => ("-", RED),
        };
        let line = format!(
            "  {} {:<10}{:<key_width$}{}",
            paint(code, symbol),
            kind_label(action.kind),
            action.key,
            describe(action),
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for f in &plan.forget {
        let line = format!(
            "  {} {:<10}{:<key_width$}{FORGET_TEXT}",
            paint(CYAN, "."),
            managed_label(f.kind),
            f.key,
        );
        out.push_str(&line);
        out.push('\n');
    }
    for warning in &plan.warnings {
        let _ = writeln!(out, "{} {}", paint(YELLOW, "Warning:"), one_line(warning));
    }
    if plan.is_empty() {
        out.push_str(NO_CHANGES);
    } else {
        out.push_str(&paint(BOLD, &summary_line(plan)));
    }
    out.push('\n');
    out
}

/// The plan as pretty JSON (stable field order, `format_version` first),
/// `\n`-terminated. This is the documented machine-readable format.
pub fn json(plan: &Plan) -> String {
    match serde_json::to_string_pretty(plan) {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        // Only a non-UTF-8 file path can fail to serialise; say so in JSON
        // rather than panic.
        Err(e) => format!(
            "{{\n  \"format_version\": {},\n  \"error\": {}\n}}\n",
            plan.format_version,
            Value::String(format!("the plan cannot be written as JSON: {e}"))
        ),
    }
}

/// The plan as GitHub-flavoured markdown for a pull-request comment: the
/// summary first, a table of actions, forgets and warnings, then the full
/// field values folded in `<details>`. User-supplied text is put in code
/// spans, so it cannot format the comment or mention anyone.
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.is_empty() {
        let _ = writeln!(out, "**{NO_CHANGES}**");
    } else {
        let _ = writeln!(out, "**{}**", summary_line(plan));
    }
    if !plan.actions.is_empty() {
        out.push_str("\n|   | Kind | Key | Change |\n|---|---|---|---|\n");
        for action in &plan.actions {
            let symbol = match action.op {
                Op::Add => "+",
                Op::Change => "~",
                Op::Remove => "-",
            };
            let description = describe(action);
            let _ = writeln!(
                out,
                "| `{symbol}` | {} | {} | {} |",
                kind_label(action.kind),
                code(&action.key),
                if description.is_empty() {
                    String::new()
                } else {
                    code(&description)
                },
            );
        }
    }
    if !plan.forget.is_empty() {
        out.push_str("\nNo longer managed (left the manifest); nothing is deleted:\n\n");
        for Forget { kind, key, urn } in &plan.forget {
            let _ = writeln!(
                out,
                "- {} {} ({})",
                managed_label(*kind),
                code(key),
                code(&urn.to_string())
            );
        }
    }
    for warning in &plan.warnings {
        let _ = writeln!(out, "\n> [!WARNING]\n> {}", md_escape(&one_line(warning)));
    }
    let detailed: Vec<&Action> = plan
        .actions
        .iter()
        .filter(|a| !a.changes.is_empty())
        .collect();
    if !detailed.is_empty() {
        let _ = writeln!(
            out,
            "\n<details><summary>Field changes ({} item{})</summary>\n",
            detailed.len(),
            if detailed.len() == 1 { "" } else { "s" }
        );
        for action in detailed {
            details(&mut out, action);
        }
        out.push_str("</details>\n");
    }
    let _ = writeln!(
        out,
        "\n<sub>manifest {} · account {}</sub>",
        code(&plan.manifest_digest),
        code(&plan.remote_digest)
    );
    out
}

/// One action's changes as a table with full values, plus the added and
/// removed members of a track list.
fn details(out: &mut String, action: &Action) {
    let urn = action
        .urn
        .map(|u| format!(" ({})", code(&u.to_string())))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "**{} {}**{urn}\n\n| Field | Old | New |\n|---|---|---|",
        kind_label(action.kind),
        code(&action.key)
    );
    let mut lists = Vec::new();
    for change in &action.changes {
        if change.field == "tracks" {
            let old = strings(change.old.as_ref());
            let new = strings(change.new.as_ref());
            let _ = writeln!(
                out,
                "| tracks | {} | {} ({}) |",
                count_tracks(old.len()),
                count_tracks(new.len()),
                list_summary(&old, &new)
            );
            lists.push((old, new));
        } else {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                md_escape(&change.field),
                full_value(change.old.as_ref()),
                full_value(change.new.as_ref())
            );
        }
    }
    for (old, new) in lists {
        let added = multiset_minus(&new, &old);
        let removed = multiset_minus(&old, &new);
        if !added.is_empty() {
            let items: Vec<String> = added.iter().map(|s| code(s)).collect();
            let _ = writeln!(out, "\nTracks added: {}", items.join(", "));
        }
        if !removed.is_empty() {
            let items: Vec<String> = removed.iter().map(|s| code(s)).collect();
            let _ = writeln!(out, "\nTracks removed: {}", items.join(", "));
        }
    }
    out.push('\n');
}

fn count_tracks(n: usize) -> String {
    if n == 1 {
        "1 track".to_owned()
    } else {
        format!("{n} tracks")
    }
}

/// Items of `a` not matched one for one in `b`, in `a`'s order.
fn multiset_minus(a: &[String], b: &[String]) -> Vec<String> {
    let mut pool: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for item in b {
        *pool.entry(item).or_default() += 1;
    }
    let mut rest = Vec::new();
    for item in a {
        match pool.get_mut(item.as_str()) {
            Some(n) if *n > 0 => *n -= 1,
            _ => rest.push(item.clone()),
        }
    }
    rest
}

fn full_value(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "*(none)*".to_owned(),
        Some(Value::String(s)) => code(s),
        Some(Value::Bool(b)) => code(&b.to_string()),
        Some(other) => code(&other.to_string()),
    }
}

fn summary_line(plan: &Plan) -> String {
    let s = &plan.summary;
    let mut line = format!(
        "Plan: {} to add, {} to change, {} to remove",
        s.add, s.change, s.remove
    );
    if !plan.forget.is_empty() {
        let _ = write!(line, ", {} to forget", plan.forget.len());
    }
    line.push('.');
    line
}

fn key_column_width(plan: &Plan) -> usize {
    let longest = plan
        .actions
        .iter()
        .map(|a| a.key.chars().count())
        .chain(plan.forget.iter().map(|f| f.key.chars().count()))
        .max()
        .unwrap_or(0);
    longest + 2
}

fn kind_label(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::Track => "track",
        ActionKind::Playlist => "playlist",
        ActionKind::Follow => "follow",
        // The URN in the key column says whether a track or a playlist.
        ActionKind::TrackLike | ActionKind::PlaylistLike => "like",
    }
}

fn managed_label(kind: ManagedKind) -> &'static str {
    match kind {
        ManagedKind::Track => "track",
        ManagedKind::Playlist => "playlist",
    }
}

/// What an action does, in one line: the request, then each field change,
/// then the note in parentheses.
fn describe(action: &Action) -> String {
    let mut parts: Vec<String> = Vec::new();
    match &action.request {
        Request::UploadTrack {
            file_display,
            size,
            replaces,
            ..
        } => {
            let upload = format!("upload {file_display} ({})", human_size(*size));
            parts.push(match replaces {
                Some(old) => format!("replace {old}: {upload}"),
                None => upload,
            });
        }
        Request::UpdateTrack { adopt: true, .. } | Request::UpdatePlaylist { adopt: true, .. } => {
            parts.push(match action.urn {
                Some(urn) => format!("adopt {urn}"),
                None => "adopt".to_owned(),
            });
        }
        Request::CreatePlaylist { fields, tracks } => {
            let count = count_tracks(tracks.len());
            parts.push(match fields.get("title") {
                Some(FieldValue::Text(title)) => {
                    format!("create {} with {count}", short_text(title))
                }
                _ => format!("create with {count}"),
            });
        }
        Request::DeleteTrack | Request::DeletePlaylist => {
            if let Some(urn) = action.urn {
                parts.push(format!("delete {urn}"));
            }
        }
        _ => {}
    }
    // The replace line already says the audio changes.
    parts.extend(
        action
            .changes
            .iter()
            .filter(|c| c.field != "audio")
            .map(describe_change),
    );
    let mut line = parts.join(", ");
    if let Some(note) = &action.note {
        if !line.is_empty() {
            line.push(' ');
        }
        let _ = write!(line, "({})", one_line(note));
    }
    line
}

fn describe_change(change: &Change) -> String {
    let field = &change.field;
    match field.as_str() {
        "tracks" => {
            let old = strings(change.old.as_ref());
            let new = strings(change.new.as_ref());
            format!("tracks: {}", list_summary(&old, &new))
        }
        "tags" => {
            let old: BTreeSet<String> = strings(change.old.as_ref()).into_iter().collect();
            let new: BTreeSet<String> = strings(change.new.as_ref()).into_iter().collect();
            let mut words: Vec<String> = new
                .difference(&old)
                .map(|t| format!("+{}", short_text(t)))
                .collect();
            words.extend(old.difference(&new).map(|t| format!("-{}", short_text(t))));
            if words.is_empty() {
                // Same set, different spelling on the wire.
                format!(
                    "tags: {} -> {}",
                    short_value(change.old.as_ref()),
                    short_value(change.new.as_ref())
                )
            } else {
                format!("tags: {}", words.join(" "))
            }
        }
        _ => format!(
            "{field}: {} -> {}",
            short_value(change.old.as_ref()),
            short_value(change.new.as_ref())
        ),
    }
}

/// `+2 -1, order changed`, `order changed`, `+3`, ...
fn list_summary(old: &[String], new: &[String]) -> String {
    let delta = list_delta(old, new);
    let mut words = Vec::new();
    if delta.added > 0 {
        words.push(format!("+{}", delta.added));
    }
    if delta.removed > 0 {
        words.push(format!("-{}", delta.removed));
    }
    let mut summary = words.join(" ");
    if delta.reordered {
        if !summary.is_empty() {
            summary.push_str(", ");
        }
        summary.push_str("order changed");
    }
    if summary.is_empty() {
        summary.push_str("unchanged");
    }
    summary
}

/// The strings of a JSON array (or of a lone string); tags given as a
/// `tag_list` text are split.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Some(Value::String(s)) => crate::tag_list::decode_tag_list(s),
        _ => Vec::new(),
    }
}

fn short_value(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "(none)".to_owned(),
        Some(Value::String(s)) => short_text(s),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Array(items)) => {
            let inner: Vec<String> = items
                .iter()
                .map(|v| match v {
                    Value::String(s) => short_text(s),
                    other => other.to_string(),
                })
                .collect();
            format!("[{}]", inner.join(", "))
        }
        Some(other) => other.to_string(),
    }
}

/// A quoted, escaped (so one line) and shortened text value.
fn short_text(s: &str) -> String {
    if s.chars().count() > MAX_VALUE_CHARS {
        let cut: String = s.chars().take(MAX_VALUE_CHARS - 1).collect();
        format!("{:?}", format!("{cut}…"))
    } else {
        format!("{s:?}")
    }
}

/// Bytes as `812 B`, `3.1 MiB`, ...
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A markdown code span holding `s` literally, safe inside a table cell.
fn code(s: &str) -> String {
    let s = s.replace(['\r', '\n'], " ").replace('|', "\\|");
    let longest_run = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run + 1);
    if s.starts_with('`') || s.ends_with('`') {
        format!("{fence} {s} {fence}")
    } else {
        format!("{fence}{s}{fence}")
    }
}

/// Escapes text that is shown as prose (warnings): markdown punctuation and
/// `@` (so no one is mentioned) become inert.
fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '@' => out.push_str("&#64;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::model::{Fields, Urn};
    use crate::plan::{FORMAT_VERSION, Summary, TrackRef};

    fn fields(pairs: &[(&str, FieldValue)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    fn text_value(s: &str) -> FieldValue {
        FieldValue::Text(s.to_owned())
    }

    fn change(field: &str, old: Option<Value>, new: Option<Value>) -> Change {
        Change {
            field: field.to_owned(),
            old,
            new,
        }
    }

    fn action(op: Op, kind: ActionKind, key: &str, urn: Option<Urn>, request: Request) -> Action {
        Action {
            op,
            kind,
            key: key.to_owned(),
            urn,
            changes: Vec::new(),
            note: None,
            request,
        }
    }

    /// One of everything a plan can hold.
    fn rich_plan() -> Plan {
        let upload_fields = fields(&[
            ("title", text_value("Night Drive")),
            (
                "tags",
                FieldValue::Tags(vec!["synthwave".into(), "late night".into()]),
            ),
        ]);
        let mut actions = vec![
            action(
                Op::Add,
                ActionKind::Track,
                "night-drive",
                None,
                Request::UploadTrack {
                    file: PathBuf::from("/music/audio/night-drive.wav"),
                    file_display: "audio/night-drive.wav".into(),
                    size: 3_250_585,
                    sha256: "5e1f".repeat(16),
                    fields: upload_fields.clone(),
                    artwork: Some(PathBuf::from("/music/art/night-drive.jpg")),
                    replaces: None,
                },
            ),
            action(
                Op::Change,
                ActionKind::Track,
                "rework",
                Some(Urn::track(31)),
                Request::UploadTrack {
                    file: PathBuf::from("/music/audio/rework.flac"),
                    file_display: "audio/rework.flac".into(),
                    size: 812,
                    sha256: "b0b0".repeat(16),
                    fields: fields(&[("title", text_value("Rework"))]),
                    artwork: None,
                    replaces: Some(Urn::track(31)),
                },
            ),
            action(
                Op::Change,
                ActionKind::Track,
                "sunrise",
                Some(Urn::track(11)),
                Request::UpdateTrack {
                    fields: fields(&[
                        ("title", text_value("Sunrise (Remaster)")),
                        ("genre", text_value("Electronic")),
                        ("downloadable", FieldValue::Bool(false)),
                    ]),
                    adopt: false,
                },
            ),
            action(
                Op::Change,
                ActionKind::Track,
                "adopted",
                Some(Urn::track(55)),
                Request::UpdateTrack {
                    fields: Fields::new(),
                    adopt: true,
                },
            ),
            action(
                Op::Add,
                ActionKind::Playlist,
                "best-of",
                None,
                Request::CreatePlaylist {
                    fields: fields(&[("title", text_value("Best of 2026"))]),
                    tracks: vec![
                        TrackRef::Key("night-drive".into()),
                        TrackRef::Urn(Urn::track(11)),
                        TrackRef::Urn(Urn::track(987_654)),
                    ],
                },
            ),
            action(
                Op::Change,
                ActionKind::Playlist,
                "late-night",
                Some(Urn::playlist(77)),
                Request::UpdatePlaylist {
                    fields: fields(&[("description", text_value("After | midnight @everyone"))]),
                    tracks: vec![
                        TrackRef::Urn(Urn::track(3)),
                        TrackRef::Urn(Urn::track(2)),
                        TrackRef::Urn(Urn::track(4)),
                        TrackRef::Key("night-drive".into()),
                    ],
                    adopt: false,
                },
            ),
            action(
                Op::Add,
                ActionKind::Follow,
                "soundcloud:users:42",
                Some(Urn::user(42)),
                Request::Follow,
            ),
            action(
                Op::Add,
                ActionKind::PlaylistLike,
                "soundcloud:playlists:70",
                Some(Urn::playlist(70)),
                Request::Like,
            ),
            action(
                Op::Remove,
                ActionKind::Follow,
                "soundcloud:users:3",
                Some(Urn::user(3)),
                Request::Unfollow,
            ),
            action(
                Op::Remove,
                ActionKind::TrackLike,
                "soundcloud:tracks:9",
                Some(Urn::track(9)),
                Request::Unlike,
            ),
            action(
                Op::Remove,
                ActionKind::Track,
                "old-demo",
                Some(Urn::track(13)),
                Request::DeleteTrack,
            ),
        ];
        actions[1].changes = vec![
            change(
                "audio",
                Some(Value::String(format!("sha256:{}", "a0a0".repeat(16)))),
                Some(Value::String(format!("sha256:{}", "b0b0".repeat(16)))),
            ),
            change(
                "title",
                Some(Value::String("Rework (demo)".into())),
                Some(Value::String("Rework".into())),
            ),
        ];
        actions[2].changes = vec![
            change(
                "title",
                Some(Value::String("Sunrise".into())),
                Some(Value::String("Sunrise (Remaster)".into())),
            ),
            change("genre", None, Some(Value::String("Electronic".into()))),
            change(
                "downloadable",
                Some(Value::Bool(true)),
                Some(Value::Bool(false)),
            ),
            change(
                "tags",
                Some(serde_json::json!(["ambient", "dawn"])),
                Some(serde_json::json!(["ambient", "late night"])),
            ),
        ];
        actions[5].changes = vec![
            change(
                "description",
                Some(Value::String(
                    "A very long description that goes on\nover several lines and more than fits"
                        .into(),
                )),
                Some(Value::String("After | midnight @everyone".into())),
            ),
            change(
                "tracks",
                Some(serde_json::json!([
                    "soundcloud:tracks:1",
                    "soundcloud:tracks:2",
                    "soundcloud:tracks:3"
                ])),
                Some(serde_json::json!([
                    "soundcloud:tracks:3",
                    "soundcloud:tracks:2",
                    "soundcloud:tracks:4",
                    "night-drive"
                ])),
            ),
        ];
        actions[6].note = Some("https://soundcloud.com/someone".into());
        actions[8].note = Some("prune".into());
        actions[9].note = Some("prune".into());
        actions[10].note = Some("prune".into());
        Plan {
            format_version: FORMAT_VERSION,
            manifest_digest: format!("sha256:{}", "1d".repeat(32)),
            remote_digest: format!("sha256:{}", "2e".repeat(32)),
            summary: Summary {
                add: 4,
                change: 4,
                remove: 3,
            },
            actions,
            forget: vec![Forget {
                kind: ManagedKind::Playlist,
                key: "old-list".into(),
                urn: Urn::playlist(78),
            }],
            warnings: vec![
                "track sunrise: audio/sunrise.wav differs from the audio last uploaded \
                 (sha256:aaaa… now sha256:bbbb…); set policy.on_audio_change: replace"
                    .into(),
            ],
        }
    }

    fn empty_plan() -> Plan {
        Plan {
            format_version: FORMAT_VERSION,
            manifest_digest: "sha256:11".into(),
            remote_digest: "sha256:22".into(),
            summary: Summary::default(),
            actions: Vec::new(),
            forget: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// ANSI escapes made visible, so the snapshot can be read.
    fn visible_escapes(s: &str) -> String {
        s.replace('\x1b', "\\e")
    }

    #[test]
    fn text_without_colour() {
        insta::assert_snapshot!(text(&rich_plan(), false));
    }

    #[test]
    fn text_with_colour() {
        insta::assert_snapshot!(visible_escapes(&text(&rich_plan(), true)));
    }

    #[test]
    fn text_without_colour_has_no_escape_codes() {
        assert!(!text(&rich_plan(), false).contains('\x1b'));
    }

    #[test]
    fn json_is_the_documented_format() {
        let rendered = json(&rich_plan());
        insta::assert_snapshot!(rendered);
        let back: Plan = serde_json::from_str(&rendered).unwrap();
        assert_eq!(back, rich_plan());
    }

    #[test]
    fn markdown_for_a_pull_request() {
        insta::assert_snapshot!(markdown(&rich_plan()));
    }

    #[test]
    fn an_empty_plan_says_there_is_nothing_to_do() {
        assert_eq!(
            text(&empty_plan(), true),
            "No changes. The account matches the manifest.\n"
        );
        assert!(
            markdown(&empty_plan())
                .starts_with("**No changes. The account matches the manifest.**\n")
        );
        let value: Value = serde_json::from_str(&json(&empty_plan())).unwrap();
        assert_eq!(value["format_version"], 1);
        assert_eq!(value["actions"], serde_json::json!([]));
    }

    #[test]
    fn the_design_example_renders_as_documented() {
        let mut plan = empty_plan();
        let mut upload = action(
            Op::Add,
            ActionKind::Track,
            "night-drive",
            None,
            Request::UploadTrack {
                file: PathBuf::from("/m/audio/night-drive.wav"),
                file_display: "audio/night-drive.wav".into(),
                size: 3_250_585,
                sha256: "00".into(),
                fields: Fields::new(),
                artwork: None,
                replaces: None,
            },
        );
        upload.changes.clear();
        let mut retitle = action(
            Op::Change,
            ActionKind::Track,
            "sunrise",
            Some(Urn::track(11)),
            Request::UpdateTrack {
                fields: Fields::new(),
                adopt: false,
            },
        );
        retitle.changes = vec![change(
            "title",
            Some(Value::String("Sunrise".into())),
            Some(Value::String("Sunrise (Remaster)".into())),
        )];
        let mut follow = action(
            Op::Add,
            ActionKind::Follow,
            "soundcloud:users:42",
            Some(Urn::user(42)),
            Request::Follow,
        );
        follow.note = Some("someone".into());
        let mut unlike = action(
            Op::Remove,
            ActionKind::TrackLike,
            "soundcloud:tracks:9",
            Some(Urn::track(9)),
            Request::Unlike,
        );
        unlike.note = Some("prune".into());
        plan.actions = vec![upload, retitle, follow, unlike];
        plan.summary = Summary {
            add: 2,
            change: 1,
            remove: 1,
        };
        assert_eq!(
            text(&plan, false),
            "  + track     night-drive          upload audio/night-drive.wav (3.1 MiB)\n\
             \x20 ~ track     sunrise              title: \"Sunrise\" -> \"Sunrise (Remaster)\"\n\
             \x20 + follow    soundcloud:users:42  (someone)\n\
             \x20 - like      soundcloud:tracks:9  (prune)\n\
             Plan: 2 to add, 1 to change, 1 to remove.\n"
        );
    }

    #[test]
    fn sizes_read_like_a_person_would_write_them() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3_250_585), "3.1 MiB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }

    #[test]
    fn code_spans_survive_backticks_and_pipes() {
        assert_eq!(code("plain"), "`plain`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("a|b\nc"), "`a\\|b c`");
    }
}
