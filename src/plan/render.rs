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
const FORGET_TEXT: &str = "no longer in the manifest; left on the account (prune off)";

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
        let _ = writeln!(out, "\nNo longer managed ({FORGET_TEXT}):\n");
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
    let mut pool: Vec<&String> = b.iter().collect();
    let mut rest = Vec::new();
    for item in a {
        if let Some(i) = pool.iter().position(|p| *p == item) {
            pool.swap_remove(i);
        } else {
            rest.push(item.clone());
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
        Some(Value::String(s)) => super::diff::parse_tag_list(s),
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
