//! `scsync demo`: the main job, end to end, against a built-in emulator.
//!
//! Starts `sc-emulator` in-process with a small seeded account, writes
//! `config.example.yaml` and the files it names into a temporary folder,
//! signs in through the real OAuth flow (the emulator approves at once),
//! then plans, applies, and plans again to show that nothing is left.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sc_emulator::{Emulator, Options, Seed};

use crate::api::PendingLogin;
use crate::apply::NeverStop;
use crate::manifest::{self, Credentials};
use crate::plan::render;
use crate::secret::Secret;
use crate::state::Store;

use super::apply_cmd::execute;
use super::plan_cmd::color_stdout;
use super::session::{StoredTokens, api_config};
use super::{CommandError, Result, Session, Status};

const MANIFEST: &str = include_str!("../../config.example.yaml");
const SEED: &str = include_str!("../../examples/demo-seed.json");
const COVER: &[u8] = include_bytes!("../../examples/art/cover.png");

pub async fn run() -> Result<Status> {
    let seed = Seed::from_text(SEED)
        .map_err(|e| CommandError::Failed(format!("the demo seed is broken: {e}")))?;
    let emulator = Emulator::start(seed, Options::default())
        .await
        .map_err(|e| CommandError::io("cannot start the emulator", e))?;
    let folder = DemoFolder::create()?;
    let result = demo(&emulator.base_url(), &folder.0).await;
    emulator.shutdown().await;
    result
}

async fn demo(base_url: &str, folder: &Path) -> Result<Status> {
    outln!("scsync demo: an emulated SoundCloud account at {base_url}");
    outln!(
        "manifest: config.example.yaml (copied to {})\n",
        folder.display()
    );
    let mut manifest = manifest::load(&folder.join("config.example.yaml"))?;
    // The emulator has no rate limit: no need to pace the demo's writes.
    manifest.policy.writes_per_minute = 6000;
    let credentials = Credentials {
        client_id: "demo-client".into(),
        client_secret: Some(Secret::new("demo-secret")),
        api_url: base_url.into(),
        auth_url: base_url.into(),
    };
    let store = Arc::new(Store::open(&folder.join("state.db"))?);

    outln!("$ scsync login");
    let pending = PendingLogin::start(api_config(&credentials)?).await?;
    let approved = pending.approve_without_browser().await?;
    pending
        .complete(&StoredTokens(store.clone()), Some(approved))
        .await?;
    outln!("Signed in (the emulator approved at once).\n");

    let session = Session::with(manifest, credentials, store)?;
    let color = color_stdout();
    outln!("$ scsync plan");
    let plan = session.plan().await?.plan;
    out!("{}", render::text(&plan, color));

    outln!("\n$ scsync apply --yes");
    let report = execute(&session, &plan, &NeverStop).await?;
    outln!("Apply: {}.", report.summary());
    if !report.ok() {
        return Err(CommandError::Failed(format!(
            "the demo apply did not complete: {:?}",
            report.failed
        )));
    }

    outln!("\n$ scsync plan   # again: the account now matches the manifest");
    let again = session.plan().await?.plan;
    out!("{}", render::text(&again, color));
    Ok(Status::Success)
}

/// A temporary folder holding the example manifest and the files it names;
/// removed on drop.
struct DemoFolder(PathBuf);

impl DemoFolder {
    fn create() -> Result<DemoFolder> {
        let root = std::env::temp_dir().join(format!("scsync-demo-{}", std::process::id()));
        let folder = DemoFolder(root);
        let io = |what: &str| {
            let what = what.to_owned();
            move |e| CommandError::io(what, e)
        };
        let root = &folder.0;
        std::fs::create_dir_all(root.join("examples/audio"))
            .map_err(io("cannot create the demo folder"))?;
        std::fs::create_dir_all(root.join("examples/art"))
            .map_err(io("cannot create the demo folder"))?;
        std::fs::write(root.join("config.example.yaml"), MANIFEST)
            .map_err(io("cannot write the demo manifest"))?;
        std::fs::write(root.join("examples/art/cover.png"), COVER)
            .map_err(io("cannot write the demo artwork"))?;
        for (name, tone) in [("night-drive", 220.0), ("sunrise", 330.0)] {
            let path = root.join(format!("examples/audio/{name}.wav"));
            crate::audio::write_wav(&path, 500, tone).map_err(io("cannot write the demo audio"))?;
        }
        Ok(folder)
    }
}

impl Drop for DemoFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
