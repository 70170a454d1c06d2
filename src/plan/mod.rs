//! The plan: what must change for the account to match the manifest.
//!
//! `diff` computes it purely from (desired, remote, local state); `render`
//! prints it as text, JSON or markdown. Nothing here does IO.
//! The JSON form of [`Plan`] is a stable, documented format (`format_version`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::{Fields, ManagedKind, Urn};

pub mod diff;
pub mod render;

pub use diff::{AudioFile, PlanError, PlanInput, PolicyRefusal, check_policy, diff, remote_digest};

pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Add,
    Change,
    Remove,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Track,
    Playlist,
    Follow,
    TrackLike,
    PlaylistLike,
}

impl Op {
    /// The name used in the JSON plan and the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Change => "change",
            Op::Remove => "remove",
        }
    }

    pub fn parse(text: &str) -> Option<Op> {
        [Op::Add, Op::Change, Op::Remove]
            .into_iter()
            .find(|op| op.as_str() == text)
    }
}

impl ActionKind {
    /// The name used in the JSON plan, the journal and the daemon's metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Track => "track",
            ActionKind::Playlist => "playlist",
            ActionKind::Follow => "follow",
            ActionKind::TrackLike => "track_like",
            ActionKind::PlaylistLike => "playlist_like",
        }
    }

    pub fn parse(text: &str) -> Option<ActionKind> {
        [
            ActionKind::Track,
            ActionKind::Playlist,
            ActionKind::Follow,
            ActionKind::TrackLike,
            ActionKind::PlaylistLike,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

/// One field's change, for display and for the JSON plan. Values are JSON so
/// that a track list (an array of URNs or keys) fits beside plain fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    pub old: Option<serde_json::Value>,
    pub new: Option<serde_json::Value>,
}

/// An entry of a playlist's track list at plan time: a URN that exists, or a
/// manifest track key whose upload is part of the same plan.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackRef {
    Urn(Urn),
    Key(String),
}

/// The request an action makes: everything `apply` needs, so a saved plan
/// can be applied exactly as it was shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// POST /tracks. With `replaces`, the old track is deleted only after
    /// the new one exists.
    UploadTrack {
        file: PathBuf,
        file_display: String,
        size: u64,
        sha256: String,
        fields: Fields,
        artwork: Option<PathBuf>,
        replaces: Option<Urn>,
    },
    /// PUT /tracks/{urn} with only `fields` (may be empty when only adopting).
    UpdateTrack {
        fields: Fields,
        adopt: bool,
    },
    DeleteTrack,
    /// POST /playlists.
    CreatePlaylist {
        fields: Fields,
        tracks: Vec<TrackRef>,
    },
    /// PUT /playlists/{urn}: changed fields plus the whole track list, since
    /// a PUT replaces the list.
    UpdatePlaylist {
        fields: Fields,
        tracks: Vec<TrackRef>,
        adopt: bool,
    },
    DeletePlaylist,
    Follow,
    Unfollow,
    Like,
    Unlike,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub op: Op,
    pub kind: ActionKind,
    /// The manifest key, or the URN for follows and likes.
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urn: Option<Urn>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// A short human note shown in parentheses: a username, "prune", ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub request: Request,
}

/// A managed track or playlist that left the manifest while its prune flag
/// is off: scsync stops managing it and leaves it on the account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forget {
    pub kind: ManagedKind,
    pub key: String,
    pub urn: Urn,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub remove: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    /// `sha256:HEX` of the manifest as loaded.
    pub manifest_digest: String,
    /// `sha256:HEX` of the remote state the plan was computed from, so that
    /// `apply --plan` can refuse a plan whose account has changed since.
    pub remote_digest: String,
    pub summary: Summary,
    pub actions: Vec<Action>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forget: Vec<Forget>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.forget.is_empty()
    }

    pub fn removals(&self) -> usize {
        self.actions.iter().filter(|a| a.op == Op::Remove).count()
    }
}

impl std::fmt::Display for TrackRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrackRef::Urn(urn) => write!(f, "{urn}"),
            TrackRef::Key(key) => f.write_str(key),
        }
    }
}

/// How an ordered list (a playlist's tracks) changed: members added and
/// removed (duplicates counted), and whether the members kept on both sides
/// changed order. Membership and order are reported apart so that a move
/// does not read as a removal plus an addition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListDelta {
    pub added: usize,
    pub removed: usize,
    pub reordered: bool,
}

impl ListDelta {
    pub fn is_empty(&self) -> bool {
        self.added == 0 && self.removed == 0 && !self.reordered
    }
}

/// Compares two ordered lists as multisets plus order: `common` counts the
/// shared members, and the order changed when the longest common
/// subsequence is shorter than that.
pub fn list_delta<T: Ord>(old: &[T], new: &[T]) -> ListDelta {
    use std::collections::BTreeMap;
    let mut counts: BTreeMap<&T, (usize, usize)> = BTreeMap::new();
    for item in old {
        counts.entry(item).or_default().0 += 1;
    }
    for item in new {
        counts.entry(item).or_default().1 += 1;
    }
    let common: usize = counts.values().map(|(a, b)| (*a).min(*b)).sum();
    let reordered = if counts.values().all(|(a, b)| *a <= 1 && *b <= 1) {
        // No duplicates (the usual case): the shared members, in each
        // list's order, either match or the order changed.
        let old_shared: Vec<&T> = old
            .iter()
            .filter(|item| counts.get(item).is_some_and(|(_, b)| *b > 0))
            .collect();
        let new_shared: Vec<&T> = new
            .iter()
            .filter(|item| counts.get(item).is_some_and(|(a, _)| *a > 0))
            .collect();
        old_shared != new_shared
    } else {
        lcs_len(old, new) < common
    };
    ListDelta {
        added: new.len() - common,
        removed: old.len() - common,
        reordered,
    }
}

/// Length of the longest common subsequence, in O(len(old) * len(new)) time
/// and O(len(new)) memory; only used when a list holds duplicates
/// (playlists hold at most 500 tracks).
fn lcs_len<T: PartialEq>(old: &[T], new: &[T]) -> usize {
    let mut prev = vec![0usize; new.len() + 1];
    let mut row = vec![0usize; new.len() + 1];
    for a in old {
        for (j, b) in new.iter().enumerate() {
            row[j + 1] = if a == b {
                prev[j] + 1
            } else {
                prev[j + 1].max(row[j])
            };
        }
        std::mem::swap(&mut prev, &mut row);
    }
    prev[new.len()]
}

#[cfg(test)]
mod names_tests {
    use super::*;

    #[test]
    fn names_are_the_json_plan_names_and_parse_back() {
        for kind in [
            ActionKind::Track,
            ActionKind::Playlist,
            ActionKind::Follow,
            ActionKind::TrackLike,
            ActionKind::PlaylistLike,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
            assert_eq!(ActionKind::parse(kind.as_str()), Some(kind));
        }
        for op in [Op::Add, Op::Change, Op::Remove] {
            assert_eq!(serde_json::to_value(op).unwrap(), op.as_str());
            assert_eq!(Op::parse(op.as_str()), Some(op));
        }
        assert_eq!(ActionKind::parse("like"), None);
    }
}
