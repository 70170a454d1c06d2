//! The pipeline `plan`, `apply`, `daemon` and `demo` share: manifest, state,
//! connection, reference resolution, pull, plan.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::api::{
    ApiConfig, ApiReader, ApiWriter, RefreshGuard, RetryPolicy, StoreError, TokenSet, TokenStore,
};
use crate::apply::unsettled_key;
use crate::cli::GlobalArgs;
use crate::manifest::{self, Credentials, Manifest};
use crate::model::{ManagedKind, Policy, Reference, RemoteState};
use crate::plan::Plan;
use crate::plan::diff::{self, AudioFile, PlanInput};
use crate::state::{self, Store, TokenKind};
use crate::{audio, remote};

use super::{CommandError, Result};

/// An opened manifest, state database and API connection.
pub struct Session {
    pub manifest: Manifest,
    pub store: Arc<Store>,
    pub api: ApiWriter,
    reader: ApiReader,
}

/// A plan and what it was computed from.
pub struct Planned {
    pub plan: Plan,
    pub remote: RemoteState,
}

impl Session {
    /// Loads the manifest and opens the state database and a connection.
    pub fn open(global: &GlobalArgs) -> Result<Session> {
        let manifest = manifest::load(&global.config)?;
        let credentials = manifest.account.credentials()?;
        let store = Arc::new(open_store(global)?);
        Session::with(manifest, credentials, store)
    }

    pub fn with(
        manifest: Manifest,
        credentials: Credentials,
        store: Arc<Store>,
    ) -> Result<Session> {
        let config = with_policy(api_config(&credentials)?, &manifest.policy);
        let api = ApiWriter::new(config, Arc::new(StoredTokens(store.clone())))?;
        let reader = api.reader();
        Ok(Session {
            manifest,
            store,
            api,
            reader,
        })
    }

    /// A handle that can only read: what `plan` is given.
    pub fn reader(&self) -> &ApiReader {
        &self.reader
    }

    /// Resolves URL references, hashes audio files, pulls the account and
    /// diffs. Only reads from the service.
    pub async fn plan(&self) -> Result<Planned> {
        self.check_unsettled()?;
        let reader = self.reader();
        self.resolve_urls(reader).await?;
        let audio = hash_audio(&self.manifest)?;
        let remote = remote::pull(reader).await?;
        let local = self.store.local_state()?;
        let plan = diff::diff(&PlanInput {
            desired: &self.manifest.desired,
            remote: &remote,
            local: &local,
            policy: &self.manifest.policy,
            audio: &audio,
            manifest_digest: self.manifest.digest.clone(),
        })?;
        Ok(Planned { plan, remote })
    }

    /// A create whose fate was ambiguous (several objects on the account
    /// could be it) holds its key back until the manifest adopts one:
    /// creating it again would make a third copy.
    fn check_unsettled(&self) -> Result<()> {
        let d = &self.manifest.desired;
        let keys = d
            .tracks
            .iter()
            .map(|t| (ManagedKind::Track, &t.key, t.adopt.is_some()))
            .chain(
                d.playlists
                    .iter()
                    .map(|p| (ManagedKind::Playlist, &p.key, p.adopt.is_some())),
            );
        let mut held = Vec::new();
        for (kind, key, adopts) in keys {
            let meta = unsettled_key(kind, key);
            match self.store.meta(&meta)? {
                Some(_) if adopts => self.store.delete_meta(&meta)?,
                Some(candidates) => held.push(format!(
                    "{} {key}: an earlier upload or create may have made one of {candidates}; \
                     add `adopt: URN` for the right one (and delete the others on SoundCloud)",
                    if kind == ManagedKind::Track {
                        "track"
                    } else {
                        "playlist"
                    }
                )),
                None => {}
            }
        }
        if held.is_empty() {
            Ok(())
        } else {
            Err(CommandError::Failed(format!(
                "not planning while these are unsettled:\n  {}",
                held.join("\n  ")
            )))
        }
    }

    /// Every URL reference not yet in the resolve cache goes through
    /// `/resolve` once; the answer is cached in the state database.
    async fn resolve_urls(&self, reader: &ApiReader) -> Result<()> {
        let d = &self.manifest.desired;
        let urls: BTreeSet<&str> = d
            .playlists
            .iter()
            .flat_map(|p| p.tracks.iter())
            .chain(&d.follows)
            .chain(&d.liked_tracks)
            .chain(&d.liked_playlists)
            .filter_map(|r| match r {
                Reference::Url(url) => Some(url.as_str()),
                _ => None,
            })
            .collect();
        // Every URL is tried, so all the bad ones are reported in one run.
        let mut not_found = Vec::new();
        for url in urls {
            if self.store.cached_resolution(url)?.is_some() {
                continue;
            }
            match remote::resolve(reader, url).await {
                Ok(urn) => self.store.cache_resolution(url, urn)?,
                Err(error) if error.is_not_found() => not_found.push(url),
                Err(error) => return Err(error.into()),
            }
        }
        if not_found.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> = not_found
            .iter()
            .map(|url| match locate(&self.manifest.files, url) {
                Some(place) => format!("{place}: error: {url} was not found on SoundCloud"),
                None => format!("{url} was not found on SoundCloud"),
            })
            .collect();
        Err(CommandError::Failed(format!(
            "{} URL(s) in the manifest do not resolve (resolve answered 404); check them:\n{}",
            not_found.len(),
            lines.join("\n")
        )))
    }
}

/// `FILE:LINE:COLUMN` of the first place a manifest file mentions the URL
/// (matched on `soundcloud.com/PATH`, since the written form may differ in
/// scheme or `www.`).
fn locate(files: &[std::path::PathBuf], url: &str) -> Option<String> {
    let needle = url.split_once("soundcloud.com/").map(|(_, path)| path)?;
    let needle = format!("soundcloud.com/{needle}");
    files.iter().find_map(|file| {
        let text = std::fs::read_to_string(file).ok()?;
        let at = text.find(&needle)?;
        let before = &text[..at];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        // Point at the start of the URL as written, scheme included.
        let written = before[line_start..]
            .rfind(|c: char| c.is_whitespace() || matches!(c, '[' | ',' | '"' | '\''))
            .map_or(line_start, |i| line_start + i + 1);
        let column = text[line_start..written].chars().count() + 1;
        Some(format!("{}:{line}:{column}", file.display()))
    })
}

/// The API settings for the manifest's account.
pub fn api_config(credentials: &Credentials) -> Result<ApiConfig> {
    Ok(ApiConfig::with_hosts(
        credentials.client_id.clone(),
        credentials.client_secret.clone(),
        &credentials.api_url,
        &credentials.auth_url,
    )?)
}

/// The manifest's write pacing and retry settings, applied to the client.
pub fn with_policy(mut config: ApiConfig, policy: &Policy) -> ApiConfig {
    config.write_interval = Duration::from_secs(60) / policy.writes_per_minute.max(1);
    let retry = policy.retry;
    let first = Duration::from_millis(retry.first_delay_ms);
    config.retry = RetryPolicy {
        max_retries: retry.attempts as usize,
        min_delay: first,
        rate_limit_min_delay: first * 10,
        max_delay: (first * 120).min(Duration::from_secs(120)).max(first),
        max_wait: Duration::from_secs(retry.max_wait_s),
        hint_jitter: first.min(Duration::from_secs(1)),
    };
    config
}

/// The user's tokens, kept in the state database. `save` commits before it
/// returns, so a rotated refresh token is never lost; refreshes are
/// serialised across processes by the lock file beside the database.
pub struct StoredTokens(pub Arc<Store>);

/// How long a refresh waits for another process's refresh (one token
/// request, normally well under a second) before giving up.
const REFRESH_LOCK_WAIT: Duration = Duration::from_secs(60);

impl TokenStore for StoredTokens {
    fn load(&self) -> std::result::Result<Option<TokenSet>, StoreError> {
        Ok(self.0.load_tokens(TokenKind::User)?.map(|t| TokenSet {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            expires_at: t.expires_at,
            scope: t.scope,
        }))
    }

    fn save(&self, tokens: &TokenSet) -> std::result::Result<(), StoreError> {
        self.0.save_tokens(&state::StoredTokens {
            kind: TokenKind::User,
            access_token: tokens.access_token.clone(),
            refresh_token: tokens.refresh_token.clone(),
            expires_at: tokens.expires_at,
            scope: tokens.scope.clone(),
        })?;
        Ok(())
    }

    fn lock_for_refresh(&self) -> std::result::Result<RefreshGuard, StoreError> {
        let path = self.0.path();
        let lock = match state::refresh_lock(path, Duration::ZERO) {
            Ok(lock) => lock,
            Err(state::LockError::RefreshBusy { .. }) => {
                tracing::info!("waiting for another scsync process to finish refreshing the login");
                state::refresh_lock(path, REFRESH_LOCK_WAIT)?
            }
            Err(other) => return Err(other.into()),
        };
        Ok(RefreshGuard::new(lock))
    }
}

pub fn open_store(global: &GlobalArgs) -> Result<Store> {
    let path = match &global.state {
        Some(path) => path.clone(),
        None => state::default_path()?,
    };
    Ok(Store::open(&path)?)
}

/// SHA-256 and size of every track's audio file.
fn hash_audio(manifest: &Manifest) -> Result<BTreeMap<String, AudioFile>> {
    let mut out = BTreeMap::new();
    for track in &manifest.desired.tracks {
        // An adopted track without `file` does not manage its audio.
        if track.file.as_os_str().is_empty() {
            continue;
        }
        let digest = audio::digest(&track.file).map_err(|e| {
            CommandError::io(
                format!("cannot read audio file {}", display(&track.file)),
                e,
            )
        })?;
        out.insert(track.key.clone(), digest);
    }
    Ok(out)
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
