//! The in-memory world: users, tracks, playlists, followings, likes, apps
//! and limits, loaded from and dumped to a [`Seed`].

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use rand::Rng;
use serde_json::{Map, Value};

use crate::schema::{self, Rule};
use crate::seed::{Limits, Seed, SeedApp, SeedError, SeedLikes, SeedPlaylist, SeedTrack, SeedUser};

/// New ids start above 2^31: the service's ids are that large, and a client
/// that squeezes them into 32 bits should fail here, not in production.
const FIRST_NEW_ID: u64 = (1 << 31) + 1;

/// Timestamp format of every body (`2019/01/15 15:40:49 +0000`).
pub const TIME_FORMAT: &str = "%Y/%m/%d %H:%M:%S %z";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    Public,
    Private,
}

impl Sharing {
    pub fn parse(s: &str) -> Option<Sharing> {
        match s {
            "public" => Some(Sharing::Public),
            "private" => Some(Sharing::Private),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Sharing::Public => "public",
            Sharing::Private => "private",
        }
    }
}

/// The caller's level of access to a track (`Track#access`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Playable,
    Preview,
    Blocked,
}

impl Access {
    pub fn parse(s: &str) -> Option<Access> {
        match s {
            "playable" => Some(Access::Playable),
            "preview" => Some(Access::Preview),
            "blocked" => Some(Access::Blocked),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Access::Playable => "playable",
            Access::Preview => "preview",
            Access::Blocked => "blocked",
        }
    }
}

#[derive(Clone, Debug)]
pub struct App {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
    pub public: bool,
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: u64,
    pub permalink: String,
    pub username: String,
    pub created_at: DateTime<Utc>,
    pub fields: Fields,
}

/// What was uploaded as `track[asset_data]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asset {
    pub sha256: String,
    pub size: u64,
}

#[derive(Clone, Debug)]
pub struct Track {
    pub id: u64,
    pub user_id: u64,
    pub title: String,
    pub permalink: String,
    pub sharing: Sharing,
    pub access: Access,
    pub created_at: DateTime<Utc>,
    pub last_modified: DateTime<Utc>,
    pub secret_token: String,
    /// Other spec fields as stored (genre, tag_list, duration, ...).
    pub fields: Fields,
    pub asset: Option<Asset>,
    pub artwork_sha256: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Playlist {
    pub id: u64,
    pub user_id: u64,
    pub title: String,
    pub permalink: String,
    pub sharing: Sharing,
    pub set_type: String,
    /// Track ids in playlist order (duplicates allowed, as on the service).
    pub tracks: Vec<u64>,
    pub created_at: DateTime<Utc>,
    pub last_modified: DateTime<Utc>,
    pub secret_token: String,
    pub fields: Fields,
    pub artwork_sha256: Option<String>,
}

/// Stored spec fields of one item, keyed by the schema's own names. A
/// small vector: items hold a handful of fields, and a world may hold
/// hundreds of thousands of items.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fields(Vec<(&'static str, Value)>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Sets a field; null removes it (back to the service's default).
    pub fn set(&mut self, name: &'static str, value: Value) {
        let at = self.0.iter().position(|(n, _)| *n == name);
        match (at, value.is_null()) {
            (Some(i), true) => {
                self.0.swap_remove(i);
            }
            (Some(i), false) => self.0[i].1 = value,
            (None, true) => {}
            (None, false) => self.0.push((name, value)),
        }
    }

    pub fn to_map(&self) -> Map<String, Value> {
        self.0
            .iter()
            .map(|(n, v)| ((*n).to_string(), v.clone()))
            .collect()
    }
}

/// A set that remembers insertion order (followings and likes are listed
/// newest first).
#[derive(Clone, Debug, Default)]
pub struct OrderedSet {
    /// Oldest first, so that adding is a push.
    order: Vec<u64>,
    members: HashSet<u64>,
}

impl OrderedSet {
    /// Builds from a newest-first list, dropping repeats.
    fn from_newest_first(ids: &[u64]) -> OrderedSet {
        let mut set = OrderedSet::default();
        for id in ids.iter().rev() {
            set.insert(*id);
        }
        set
    }

    /// Adds `id` as the newest member; false if it was already there.
    pub fn insert(&mut self, id: u64) -> bool {
        if self.members.insert(id) {
            self.order.push(id);
            true
        } else {
            false
        }
    }

    pub fn remove(&mut self, id: u64) -> bool {
        if self.members.remove(&id) {
            self.order.retain(|x| *x != id);
            true
        } else {
            false
        }
    }

    pub fn contains(&self, id: u64) -> bool {
        self.members.contains(&id)
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// The `i`-th member counting from the newest.
    pub fn newest(&self, i: usize) -> Option<u64> {
        let len = self.order.len();
        (i < len).then(|| self.order[len - 1 - i])
    }

    pub fn newest_first(&self) -> impl Iterator<Item = u64> + '_ {
        self.order.iter().rev().copied()
    }
}

/// Derived counts, recomputed lazily after a change.
#[derive(Debug, Default)]
pub struct Counts {
    pub users: HashMap<u64, UserCounts>,
    pub track_likers: HashMap<u64, u64>,
    pub playlist_likers: HashMap<u64, u64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserCounts {
    pub followers: u64,
    pub followings: u64,
    pub public_tracks: u64,
    pub private_tracks: u64,
    pub public_playlists: u64,
    pub private_playlists: u64,
    pub liked_tracks: u64,
    pub liked_playlists: u64,
    /// Likes of public tracks and playlists (the service counts both).
    pub public_favorites: u64,
    pub upload_seconds: u64,
}

#[derive(Debug)]
pub struct World {
    pub apps: Vec<App>,
    pub me: Option<u64>,
    pub users: BTreeMap<u64, User>,
    pub tracks: BTreeMap<u64, Track>,
    pub playlists: BTreeMap<u64, Playlist>,
    pub followings: HashMap<u64, OrderedSet>,
    pub track_likes: HashMap<u64, OrderedSet>,
    pub playlist_likes: HashMap<u64, OrderedSet>,
    pub limits: Limits,
    pub token_ttl_s: u64,
    counts: Counts,
    counts_stale: bool,
    next_id: u64,
}

/// Why a follow was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum FollowRefusal {
    NoSuchUser,
    Yourself,
    AtLimit(usize),
}

pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    // Bodies carry whole seconds; keep the stored value equal to them.
    Utc.timestamp_opt(now.timestamp(), 0)
        .single()
        .unwrap_or(now)
}

/// `2019/01/15 15:40:49 +0000` (written out by hand: it is on every item
/// of every listing, and strftime parses its pattern on each call).
pub fn format_time(t: &DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02} +0000",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses the service's timestamp format, or RFC 3339.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_str(s, TIME_FORMAT) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
}

/// Seeded items without a timestamp get one a minute apart from this, in
/// seed order, so that listings sorted by date are deterministic.
fn seed_epoch(index: usize) -> DateTime<Utc> {
    let base = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    base + chrono::Duration::minutes(index as i64)
}

/// A URL-safe name from a title: lowercase ASCII letters and digits, runs of
/// anything else folded into one dash.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

pub fn new_secret_token() -> String {
    let mut rng = rand::rng();
    let chars: String = (0..5)
        .map(|_| {
            let n: u8 = rng.random_range(0..36);
            if n < 10 {
                (b'0' + n) as char
            } else {
                (b'a' + n - 10) as char
            }
        })
        .collect();
    format!("s-{chars}{}", rng.random_range(100_000u32..1_000_000))
}

/// Checks a seeded item's extra fields against its schema and keeps the
/// stored ones; derived ones are dropped.
fn check_fields(
    what: &str,
    fields: Map<String, Value>,
    rule: fn(&str) -> Option<Rule>,
) -> Result<Fields, SeedError> {
    let mut out = Fields::default();
    for (name, value) in fields {
        match rule(&name) {
            Some(Rule::Stored(name, kind)) => {
                if !kind.admits(&value) {
                    return Err(SeedError::Invalid(format!(
                        "{what}: field `{name}` must be {} or null",
                        kind.name()
                    )));
                }
                out.set(name, value);
            }
            Some(Rule::Derived) => {}
            None => {
                return Err(SeedError::Invalid(format!(
                    "{what}: unknown field `{name}` (not in the spec's schema)"
                )));
            }
        }
    }
    Ok(out)
}

fn parse_seed_time(what: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, SeedError> {
    match value {
        None => Ok(None),
        Some(s) => parse_time(s).map(Some).ok_or_else(|| {
            SeedError::Invalid(format!(
                "{what}: `{s}` is not a time like `2024/01/31 12:00:00 +0000`"
            ))
        }),
    }
}

fn parse_user_key(what: &str, key: &str) -> Result<u64, SeedError> {
    key.trim()
        .parse()
        .map_err(|_| SeedError::Invalid(format!("{what}: key `{key}` is not a user id")))
}

impl World {
    /// Builds a world from a seed, checking that it is consistent.
    pub fn from_seed(seed: Seed) -> Result<World, SeedError> {
        let mut world = World {
            apps: Vec::new(),
            me: seed.me,
            users: BTreeMap::new(),
            tracks: BTreeMap::new(),
            playlists: BTreeMap::new(),
            followings: HashMap::new(),
            track_likes: HashMap::new(),
            playlist_likes: HashMap::new(),
            limits: seed.limits,
            token_ttl_s: seed.token_ttl_s,
            counts: Counts::default(),
            counts_stale: true,
            next_id: FIRST_NEW_ID,
        };
        let mut max_id = 0u64;

        for app in seed.apps {
            if app.client_id.is_empty() {
                return Err(SeedError::Invalid("an app has an empty client_id".into()));
            }
            if world.apps.iter().any(|a| a.client_id == app.client_id) {
                return Err(SeedError::Invalid(format!(
                    "app `{}` is listed twice",
                    app.client_id
                )));
            }
            world.apps.push(App {
                client_id: app.client_id,
                client_secret: app.client_secret,
                redirect_uris: app.redirect_uris,
                public: app.public,
            });
        }

        let mut permalinks = HashSet::new();
        for (index, mut u) in seed.users.into_iter().enumerate() {
            let what = format!("user {}", u.id);
            if world.users.contains_key(&u.id) {
                return Err(SeedError::Invalid(format!("{what} is listed twice")));
            }
            let fields = check_fields(&what, std::mem::take(&mut u.fields), schema::user_field)?;
            let permalink = match u.permalink {
                Some(p) if !p.is_empty() => p,
                _ => {
                    let s = slug(u.username.as_deref().unwrap_or(""));
                    if s.is_empty() {
                        format!("user-{}", u.id)
                    } else {
                        s
                    }
                }
            };
            if !permalinks.insert(permalink.to_ascii_lowercase()) {
                return Err(SeedError::Invalid(format!(
                    "{what}: permalink `{permalink}` is taken by another user"
                )));
            }
            let created_at = parse_seed_time(&what, u.created_at.as_deref())?
                .unwrap_or_else(|| seed_epoch(index));
            max_id = max_id.max(u.id);
            world.users.insert(
                u.id,
                User {
                    id: u.id,
                    username: u.username.unwrap_or_else(|| permalink.clone()),
                    permalink,
                    created_at,
                    fields,
                },
            );
        }

        if let Some(me) = world.me
            && !world.users.contains_key(&me)
        {
            return Err(SeedError::Invalid(format!(
                "`me` is {me}, but there is no user {me}"
            )));
        }

        // Seeded permalinks first, so that derived ones steer around them.
        let mut track_permalinks = HashSet::new();
        for t in &seed.tracks {
            if let Some(p) = t.permalink.as_deref().filter(|p| !p.is_empty())
                && !track_permalinks.insert((t.user_id, p.to_ascii_lowercase()))
            {
                return Err(SeedError::Invalid(format!(
                    "track {}: its user already has a track with permalink `{p}`",
                    t.id
                )));
            }
        }
        let mut playlist_permalinks = HashSet::new();
        for p in &seed.playlists {
            if let Some(x) = p.permalink.as_deref().filter(|x| !x.is_empty())
                && !playlist_permalinks.insert((p.user_id, x.to_ascii_lowercase()))
            {
                return Err(SeedError::Invalid(format!(
                    "playlist {}: its user already has a playlist with permalink `{x}`",
                    p.id
                )));
            }
        }

        for (index, mut t) in seed.tracks.into_iter().enumerate() {
            let what = format!("track {}", t.id);
            if world.tracks.contains_key(&t.id) {
                return Err(SeedError::Invalid(format!("{what} is listed twice")));
            }
            if !world.users.contains_key(&t.user_id) {
                return Err(SeedError::Invalid(format!(
                    "{what}: its user_id {} is not a seeded user",
                    t.user_id
                )));
            }
            let fields = check_fields(&what, std::mem::take(&mut t.fields), schema::track_field)?;
            let sharing = parse_sharing(&what, t.sharing.as_deref())?;
            let access = match t.access.as_deref() {
                None => Access::Playable,
                Some(a) => Access::parse(a).ok_or_else(|| {
                    SeedError::Invalid(format!(
                        "{what}: access `{a}` is not playable, preview or blocked"
                    ))
                })?,
            };
            let created_at = parse_seed_time(&what, t.created_at.as_deref())?
                .unwrap_or_else(|| seed_epoch(index));
            let last_modified =
                parse_seed_time(&what, t.last_modified.as_deref())?.unwrap_or(created_at);
            let permalink = match t.permalink.take() {
                Some(p) if !p.is_empty() => p,
                _ => unique_permalink(&mut track_permalinks, t.user_id, &t.title, "track"),
            };
            let asset = match (t.asset_sha256, t.asset_size) {
                (Some(sha256), size) => Some(Asset {
                    sha256,
                    size: size.unwrap_or(0),
                }),
                (None, _) => None,
            };
            max_id = max_id.max(t.id);
            world.tracks.insert(
                t.id,
                Track {
                    id: t.id,
                    user_id: t.user_id,
                    title: t.title,
                    permalink,
                    sharing,
                    access,
                    created_at,
                    last_modified,
                    secret_token: t.secret_token.unwrap_or_else(new_secret_token),
                    fields,
                    asset,
                    artwork_sha256: t.artwork_sha256,
                },
            );
        }

        for (index, mut p) in seed.playlists.into_iter().enumerate() {
            let what = format!("playlist {}", p.id);
            if world.playlists.contains_key(&p.id) {
                return Err(SeedError::Invalid(format!("{what} is listed twice")));
            }
            if !world.users.contains_key(&p.user_id) {
                return Err(SeedError::Invalid(format!(
                    "{what}: its user_id {} is not a seeded user",
                    p.user_id
                )));
            }
            let fields =
                check_fields(&what, std::mem::take(&mut p.fields), schema::playlist_field)?;
            if let Some(missing) = p.tracks.iter().find(|id| !world.tracks.contains_key(id)) {
                return Err(SeedError::Invalid(format!(
                    "{what}: track {missing} is not a seeded track"
                )));
            }
            let sharing = parse_sharing(&what, p.sharing.as_deref())?;
            let set_type = p.set_type.unwrap_or_else(|| "playlist".to_string());
            let created_at = parse_seed_time(&what, p.created_at.as_deref())?
                .unwrap_or_else(|| seed_epoch(index));
            let last_modified =
                parse_seed_time(&what, p.last_modified.as_deref())?.unwrap_or(created_at);
            let permalink = match p.permalink.take() {
                Some(x) if !x.is_empty() => x,
                _ => unique_permalink(&mut playlist_permalinks, p.user_id, &p.title, "set"),
            };
            max_id = max_id.max(p.id);
            world.playlists.insert(
                p.id,
                Playlist {
                    id: p.id,
                    user_id: p.user_id,
                    title: p.title,
                    permalink,
                    sharing,
                    set_type,
                    tracks: p.tracks,
                    created_at,
                    last_modified,
                    secret_token: p.secret_token.unwrap_or_else(new_secret_token),
                    fields,
                    artwork_sha256: p.artwork_sha256,
                },
            );
        }

        for (key, followed) in &seed.followings {
            let what = format!("followings of `{key}`");
            let user = parse_user_key(&what, key)?;
            if !world.users.contains_key(&user) {
                return Err(SeedError::Invalid(format!("{what}: no such user")));
            }
            if let Some(bad) = followed.iter().find(|id| !world.users.contains_key(id)) {
                return Err(SeedError::Invalid(format!(
                    "{what}: user {bad} is not seeded"
                )));
            }
            if followed.contains(&user) {
                return Err(SeedError::Invalid(format!(
                    "{what}: a user cannot follow themselves"
                )));
            }
            world
                .followings
                .insert(user, OrderedSet::from_newest_first(followed));
        }

        for (key, likes) in &seed.likes {
            let what = format!("likes of `{key}`");
            let user = parse_user_key(&what, key)?;
            if !world.users.contains_key(&user) {
                return Err(SeedError::Invalid(format!("{what}: no such user")));
            }
            if let Some(bad) = likes
                .tracks
                .iter()
                .find(|id| !world.tracks.contains_key(id))
            {
                return Err(SeedError::Invalid(format!(
                    "{what}: track {bad} is not seeded"
                )));
            }
            if let Some(bad) = likes
                .playlists
                .iter()
                .find(|id| !world.playlists.contains_key(id))
            {
                return Err(SeedError::Invalid(format!(
                    "{what}: playlist {bad} is not seeded"
                )));
            }
            world
                .track_likes
                .insert(user, OrderedSet::from_newest_first(&likes.tracks));
            world
                .playlist_likes
                .insert(user, OrderedSet::from_newest_first(&likes.playlists));
        }

        world.next_id = world.next_id.max(max_id.saturating_add(1));
        Ok(world)
    }

    /// Dumps the world in the seed's shape.
    pub fn to_seed(&self) -> Seed {
        let mut followings = BTreeMap::new();
        for (user, set) in &self.followings {
            if set.len() > 0 {
                followings.insert(user.to_string(), set.newest_first().collect());
            }
        }
        let mut likes: BTreeMap<String, SeedLikes> = BTreeMap::new();
        for (user, set) in &self.track_likes {
            if set.len() > 0 {
                likes.entry(user.to_string()).or_default().tracks = set.newest_first().collect();
            }
        }
        for (user, set) in &self.playlist_likes {
            if set.len() > 0 {
                likes.entry(user.to_string()).or_default().playlists = set.newest_first().collect();
            }
        }
        Seed {
            apps: self
                .apps
                .iter()
                .map(|a| SeedApp {
                    client_id: a.client_id.clone(),
                    client_secret: a.client_secret.clone(),
                    redirect_uris: a.redirect_uris.clone(),
                    public: a.public,
                })
                .collect(),
            me: self.me,
            users: self
                .users
                .values()
                .map(|u| SeedUser {
                    id: u.id,
                    permalink: Some(u.permalink.clone()),
                    username: Some(u.username.clone()),
                    created_at: Some(format_time(&u.created_at)),
                    fields: u.fields.to_map(),
                })
                .collect(),
            tracks: self
                .tracks
                .values()
                .map(|t| SeedTrack {
                    id: t.id,
                    user_id: t.user_id,
                    title: t.title.clone(),
                    permalink: Some(t.permalink.clone()),
                    sharing: Some(t.sharing.as_str().to_string()),
                    access: Some(t.access.as_str().to_string()),
                    created_at: Some(format_time(&t.created_at)),
                    last_modified: Some(format_time(&t.last_modified)),
                    secret_token: Some(t.secret_token.clone()),
                    asset_sha256: t.asset.as_ref().map(|a| a.sha256.clone()),
                    asset_size: t.asset.as_ref().map(|a| a.size),
                    artwork_sha256: t.artwork_sha256.clone(),
                    fields: t.fields.to_map(),
                })
                .collect(),
            playlists: self
                .playlists
                .values()
                .map(|p| SeedPlaylist {
                    id: p.id,
                    user_id: p.user_id,
                    title: p.title.clone(),
                    permalink: Some(p.permalink.clone()),
                    sharing: Some(p.sharing.as_str().to_string()),
                    set_type: Some(p.set_type.clone()),
                    tracks: p.tracks.clone(),
                    created_at: Some(format_time(&p.created_at)),
                    last_modified: Some(format_time(&p.last_modified)),
                    secret_token: Some(p.secret_token.clone()),
                    artwork_sha256: p.artwork_sha256.clone(),
                    fields: p.fields.to_map(),
                })
                .collect(),
            followings,
            likes,
            limits: self.limits.clone(),
            token_ttl_s: self.token_ttl_s,
        }
    }

    pub fn app(&self, client_id: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.client_id == client_id)
    }

    /// A fresh id, unused by any user, track or playlist.
    pub fn allocate_id(&mut self) -> u64 {
        let mut id = self.next_id;
        while self.users.contains_key(&id)
            || self.tracks.contains_key(&id)
            || self.playlists.contains_key(&id)
        {
            // Past u64::MAX (only a seed can get there) start over low.
            id = id.checked_add(1).unwrap_or(FIRST_NEW_ID);
        }
        self.next_id = id.checked_add(1).unwrap_or(FIRST_NEW_ID);
        id
    }

    fn track_permalink_taken(&self, user: u64, permalink: &str, except: Option<u64>) -> bool {
        self.tracks.values().any(|t| {
            t.user_id == user && Some(t.id) != except && t.permalink.eq_ignore_ascii_case(permalink)
        })
    }

    fn playlist_permalink_taken(&self, user: u64, permalink: &str, except: Option<u64>) -> bool {
        self.playlists.values().any(|p| {
            p.user_id == user && Some(p.id) != except && p.permalink.eq_ignore_ascii_case(permalink)
        })
    }

    /// A permalink for a new track of `user` from its title, made unique
    /// with a numeric suffix as the service does.
    pub fn free_track_permalink(&self, user: u64, title: &str, except: Option<u64>) -> String {
        let base = match slug(title) {
            s if s.is_empty() => "track".to_string(),
            s => s,
        };
        let mut candidate = base.clone();
        let mut n = 1;
        while self.track_permalink_taken(user, &candidate, except) {
            candidate = format!("{base}-{n}");
            n += 1;
        }
        candidate
    }

    pub fn free_playlist_permalink(&self, user: u64, title: &str, except: Option<u64>) -> String {
        let base = match slug(title) {
            s if s.is_empty() => "set".to_string(),
            s => s,
        };
        let mut candidate = base.clone();
        let mut n = 1;
        while self.playlist_permalink_taken(user, &candidate, except) {
            candidate = format!("{base}-{n}");
            n += 1;
        }
        candidate
    }

    /// Checks a permalink a client asked for; false when the user already
    /// uses it for another item of the same kind.
    pub fn track_permalink_free(&self, user: u64, permalink: &str, track: Option<u64>) -> bool {
        !self.track_permalink_taken(user, permalink, track)
    }

    pub fn playlist_permalink_free(
        &self,
        user: u64,
        permalink: &str,
        playlist: Option<u64>,
    ) -> bool {
        !self.playlist_permalink_taken(user, permalink, playlist)
    }

    /// Call after any change that can move a count.
    pub fn touch(&mut self) {
        self.counts_stale = true;
    }

    /// The counts, recomputed if something changed since the last call.
    pub fn refresh_counts(&mut self) {
        if !self.counts_stale {
            return;
        }
        let mut counts = Counts::default();
        for t in self.tracks.values() {
            let c = counts.users.entry(t.user_id).or_default();
            match t.sharing {
                Sharing::Public => c.public_tracks += 1,
                Sharing::Private => c.private_tracks += 1,
            }
            let ms = t
                .fields
                .get("duration")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            c.upload_seconds = c.upload_seconds.saturating_add(ms / 1000);
        }
        for p in self.playlists.values() {
            let c = counts.users.entry(p.user_id).or_default();
            match p.sharing {
                Sharing::Public => c.public_playlists += 1,
                Sharing::Private => c.private_playlists += 1,
            }
        }
        for (user, set) in &self.followings {
            counts.users.entry(*user).or_default().followings = set.len() as u64;
            for followed in set.newest_first() {
                counts.users.entry(followed).or_default().followers += 1;
            }
        }
        for (user, set) in &self.track_likes {
            let mut public = 0;
            for id in set.newest_first() {
                *counts.track_likers.entry(id).or_default() += 1;
                if self
                    .tracks
                    .get(&id)
                    .is_some_and(|t| t.sharing == Sharing::Public)
                {
                    public += 1;
                }
            }
            let c = counts.users.entry(*user).or_default();
            c.liked_tracks = set.len() as u64;
            c.public_favorites += public;
        }
        for (user, set) in &self.playlist_likes {
            let mut public = 0;
            for id in set.newest_first() {
                *counts.playlist_likers.entry(id).or_default() += 1;
                if self
                    .playlists
                    .get(&id)
                    .is_some_and(|p| p.sharing == Sharing::Public)
                {
                    public += 1;
                }
            }
            let c = counts.users.entry(*user).or_default();
            c.liked_playlists = set.len() as u64;
            c.public_favorites += public;
        }
        self.counts = counts;
        self.counts_stale = false;
    }

    pub fn user_counts(&self, user: u64) -> UserCounts {
        self.counts.users.get(&user).copied().unwrap_or_default()
    }

    pub fn track_likers(&self, track: u64) -> u64 {
        self.counts.track_likers.get(&track).copied().unwrap_or(0)
    }

    pub fn playlist_likers(&self, playlist: u64) -> u64 {
        self.counts
            .playlist_likers
            .get(&playlist)
            .copied()
            .unwrap_or(0)
    }

    /// Whether `viewer` may see a track: its owner always, others only when
    /// it is public.
    pub fn track_visible(&self, track: &Track, viewer: Option<u64>) -> bool {
        track.sharing == Sharing::Public || viewer == Some(track.user_id)
    }

    pub fn playlist_visible(&self, playlist: &Playlist, viewer: Option<u64>) -> bool {
        playlist.sharing == Sharing::Public || viewer == Some(playlist.user_id)
    }

    /// Removes a track everywhere: its playlists and everyone's likes.
    pub fn delete_track(&mut self, id: u64) -> Option<Track> {
        let track = self.tracks.remove(&id)?;
        for p in self.playlists.values_mut() {
            p.tracks.retain(|t| *t != id);
        }
        for set in self.track_likes.values_mut() {
            set.remove(id);
        }
        self.touch();
        Some(track)
    }

    pub fn delete_playlist(&mut self, id: u64) -> Option<Playlist> {
        let playlist = self.playlists.remove(&id)?;
        for set in self.playlist_likes.values_mut() {
            set.remove(id);
        }
        self.touch();
        Some(playlist)
    }

    /// `user` follows `target`; Ok(true) when the follow is new.
    pub fn follow(&mut self, user: u64, target: u64) -> Result<bool, FollowRefusal> {
        if !self.users.contains_key(&target) {
            return Err(FollowRefusal::NoSuchUser);
        }
        if user == target {
            return Err(FollowRefusal::Yourself);
        }
        let max = self.limits.max_followings;
        let set = self.followings.entry(user).or_default();
        if set.contains(target) {
            return Ok(false);
        }
        if set.len() >= max {
            return Err(FollowRefusal::AtLimit(max));
        }
        set.insert(target);
        self.adjust_follow(user, target, 1);
        Ok(true)
    }

    pub fn unfollow(&mut self, user: u64, target: u64) -> bool {
        let removed = self
            .followings
            .get_mut(&user)
            .is_some_and(|set| set.remove(target));
        if removed {
            self.adjust_follow(user, target, -1);
        }
        removed
    }

    pub fn like_track(&mut self, user: u64, track: u64) -> bool {
        let added = self.track_likes.entry(user).or_default().insert(track);
        if added {
            self.adjust_track_like(user, track, 1);
        }
        added
    }

    pub fn unlike_track(&mut self, user: u64, track: u64) -> bool {
        let removed = self
            .track_likes
            .get_mut(&user)
            .is_some_and(|set| set.remove(track));
        if removed {
            self.adjust_track_like(user, track, -1);
        }
        removed
    }

    pub fn like_playlist(&mut self, user: u64, playlist: u64) -> bool {
        let added = self
            .playlist_likes
            .entry(user)
            .or_default()
            .insert(playlist);
        if added {
            self.adjust_playlist_like(user, playlist, 1);
        }
        added
    }

    pub fn unlike_playlist(&mut self, user: u64, playlist: u64) -> bool {
        let removed = self
            .playlist_likes
            .get_mut(&user)
            .is_some_and(|set| set.remove(playlist));
        if removed {
            self.adjust_playlist_like(user, playlist, -1);
        }
        removed
    }

    /// Adds a new track, keeping fresh counts fresh.
    pub fn insert_track(&mut self, track: Track) {
        if !self.counts_stale {
            let c = self.counts.users.entry(track.user_id).or_default();
            match track.sharing {
                Sharing::Public => c.public_tracks += 1,
                Sharing::Private => c.private_tracks += 1,
            }
            let ms = track
                .fields
                .get("duration")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            c.upload_seconds = c.upload_seconds.saturating_add(ms / 1000);
        }
        self.tracks.insert(track.id, track);
    }

    // Likes and follows are the writes a sync makes by the hundred, between
    // reads; they adjust the counts in place instead of forcing a recount
    // of the whole world. Other changes mark the counts stale.

    fn adjust_follow(&mut self, user: u64, target: u64, by: i64) {
        if self.counts_stale {
            return;
        }
        step(
            &mut self.counts.users.entry(user).or_default().followings,
            by,
        );
        step(
            &mut self.counts.users.entry(target).or_default().followers,
            by,
        );
    }

    fn adjust_track_like(&mut self, user: u64, track: u64, by: i64) {
        if self.counts_stale {
            return;
        }
        let public = self
            .tracks
            .get(&track)
            .is_some_and(|t| t.sharing == Sharing::Public);
        let c = self.counts.users.entry(user).or_default();
        step(&mut c.liked_tracks, by);
        if public {
            step(&mut c.public_favorites, by);
        }
        step(self.counts.track_likers.entry(track).or_default(), by);
    }

    fn adjust_playlist_like(&mut self, user: u64, playlist: u64, by: i64) {
        if self.counts_stale {
            return;
        }
        let public = self
            .playlists
            .get(&playlist)
            .is_some_and(|p| p.sharing == Sharing::Public);
        let c = self.counts.users.entry(user).or_default();
        step(&mut c.liked_playlists, by);
        if public {
            step(&mut c.public_favorites, by);
        }
        step(self.counts.playlist_likers.entry(playlist).or_default(), by);
    }

    pub fn user_by_permalink(&self, permalink: &str) -> Option<&User> {
        self.users
            .values()
            .find(|u| u.permalink.eq_ignore_ascii_case(permalink))
    }

    /// The user's tracks, newest upload first.
    pub fn tracks_of(&self, user: u64) -> Vec<u64> {
        let mut tracks: Vec<&Track> = self.tracks.values().filter(|t| t.user_id == user).collect();
        tracks.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        tracks.into_iter().map(|t| t.id).collect()
    }

    /// The user's playlists, newest first.
    pub fn playlists_of(&self, user: u64) -> Vec<u64> {
        let mut playlists: Vec<&Playlist> = self
            .playlists
            .values()
            .filter(|p| p.user_id == user)
            .collect();
        playlists.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        playlists.into_iter().map(|p| p.id).collect()
    }
}

/// A permalink from `title` that `user` does not use yet (a numeric suffix
/// as the service adds), recorded in `taken`.
fn unique_permalink(
    taken: &mut HashSet<(u64, String)>,
    user: u64,
    title: &str,
    fallback: &str,
) -> String {
    let base = match slug(title) {
        s if s.is_empty() => fallback.to_string(),
        s => s,
    };
    let mut candidate = base.clone();
    let mut n = 1;
    while taken.contains(&(user, candidate.clone())) {
        candidate = format!("{base}-{n}");
        n += 1;
    }
    taken.insert((user, candidate.clone()));
    candidate
}

fn step(count: &mut u64, by: i64) {
    *count = count.saturating_add_signed(by);
}

fn parse_sharing(what: &str, value: Option<&str>) -> Result<Sharing, SeedError> {
    match value {
        None => Ok(Sharing::Public),
        Some(s) => Sharing::parse(s).ok_or_else(|| {
            SeedError::Invalid(format!("{what}: sharing `{s}` is not public or private"))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_folds_punctuation_and_case() {
        assert_eq!(slug("Night Drive (Remaster)!"), "night-drive-remaster");
        assert_eq!(slug("  ..."), "");
        assert_eq!(slug("Ünïcode Song"), "n-code-song");
    }

    #[test]
    fn times_round_trip_in_the_service_format() {
        let t = parse_time("2019/01/15 15:40:49 +0000").expect("service format parses");
        assert_eq!(format_time(&t), "2019/01/15 15:40:49 +0000");
        let t = parse_time("2019-01-15T16:40:49+01:00").expect("rfc3339 parses");
        assert_eq!(format_time(&t), "2019/01/15 15:40:49 +0000");
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn ordered_set_lists_newest_first() {
        let mut set = OrderedSet::from_newest_first(&[3, 2, 1]);
        assert!(set.insert(4));
        assert!(!set.insert(2));
        assert_eq!(set.newest_first().collect::<Vec<_>>(), vec![4, 3, 2, 1]);
        assert_eq!(set.newest(0), Some(4));
        assert_eq!(set.newest(3), Some(1));
        assert_eq!(set.newest(4), None);
        assert!(set.remove(3));
        assert_eq!(set.newest_first().collect::<Vec<_>>(), vec![4, 2, 1]);
    }

    fn all_counts(w: &World) -> Vec<String> {
        let mut out: Vec<String> = w
            .users
            .keys()
            .map(|u| format!("user {u}: {:?}", w.user_counts(*u)))
            .collect();
        out.extend(
            w.tracks
                .keys()
                .map(|t| format!("track {t}: {}", w.track_likers(*t))),
        );
        out.extend(
            w.playlists
                .keys()
                .map(|p| format!("set {p}: {}", w.playlist_likers(*p))),
        );
        out
    }

    #[test]
    fn counts_kept_in_place_equal_a_full_recount() {
        let mut w = World::from_seed(Seed::demo()).expect("demo seed");
        w.refresh_counts();
        assert!(w.like_track(1, 102));
        assert!(!w.like_track(1, 102));
        assert!(w.unlike_track(1, 100));
        assert!(w.like_track(2, 101));
        assert!(w.like_playlist(1, 200));
        assert!(w.unlike_playlist(1, 200));
        assert!(w.like_playlist(2, 200));
        assert_eq!(w.follow(1, 3), Ok(true));
        assert!(w.unfollow(1, 2));
        assert_eq!(w.follow(3, 1), Ok(true));
        let mut track = w.tracks[&100].clone();
        track.id = 999;
        track.permalink = "copy".into();
        track.sharing = Sharing::Private;
        w.insert_track(track);
        w.refresh_counts();
        let in_place = all_counts(&w);
        w.touch();
        w.refresh_counts();
        assert_eq!(in_place, all_counts(&w));
        assert_eq!(w.user_counts(1).followings, 1);
        assert_eq!(w.user_counts(2).private_tracks, 1);
    }

    #[test]
    fn demo_seed_builds() {
        let world = World::from_seed(Seed::demo()).expect("demo seed is consistent");
        assert_eq!(world.me, Some(1));
        assert!(world.tracks.len() >= 3);
    }

    #[test]
    fn seed_errors_name_the_item() {
        let seed = Seed::from_text(
            r#"{"users":[{"id":1,"permalink":"a"}],"tracks":[{"id":5,"user_id":9,"title":"x"}]}"#,
        )
        .expect("parses");
        let err = World::from_seed(seed).expect_err("user 9 is missing");
        assert!(err.to_string().contains("track 5"), "{err}");

        let seed = Seed::from_text(
            "users: [{id: 1, permalink: a}]\ntracks: [{id: 5, user_id: 1, title: x, colour: red}]\n",
        )
        .expect("parses");
        let err = World::from_seed(seed).expect_err("unknown field");
        assert!(err.to_string().contains("`colour`"), "{err}");
    }

    #[test]
    fn yaml_accepts_numeric_user_keys() {
        let seed = Seed::from_text(
            "users: [{id: 1, permalink: a}, {id: 2, permalink: b}]\nfollowings: {1: [2]}\n",
        )
        .expect("parses");
        let world = World::from_seed(seed).expect("consistent");
        assert!(world.followings[&1].contains(2));
    }
}
