//! sc-emulator: an in-memory SoundCloud API for scsync's tests and demo.
//!
//! One address serves the API host (`/me`, `/tracks`, ...) and the auth
//! host (`/authorize`, `/oauth/token`, `/sign-out`), with the spec's paths,
//! status codes, body shapes, pagination and access filtering, plus a test
//! surface under `/_emulator/` (seed, state, request log, fault rules).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let emulator = sc_emulator::Emulator::start(sc_emulator::Seed::demo(), Default::default()).await?;
//! println!("{}", emulator.base_url());
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```

mod audio;
mod auth;
mod error;
mod faults;
mod paging;
mod render;
mod routes;
mod schema;
mod seed;
mod server;
mod world;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use faults::{FaultBody, FaultRule, NextHrefFault, RetryAfter};
pub use seed::{
    DEFAULT_TOKEN_TTL_S, Limits, Seed, SeedApp, SeedError, SeedLikes, SeedPlaylist, SeedTrack,
    SeedUser,
};

/// How long `shutdown` waits for requests in flight before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Knobs of a running emulator.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Added to every API request (not to `/_emulator/` calls).
    pub latency_ms: u64,
}

/// A running emulator on a local address.
pub struct Emulator {
    base_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl Emulator {
    /// Starts on `127.0.0.1` on a free port.
    pub async fn start(seed: Seed, options: Options) -> io::Result<Emulator> {
        Emulator::bind(SocketAddr::from(([127, 0, 0, 1], 0)), seed, options).await
    }

    /// Starts on `addr` (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr, seed: Seed, options: Options) -> io::Result<Emulator> {
        let world = world::World::from_seed(seed)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let base_url = format!("http://{local}");
        let shared = Arc::new(server::Shared::new(
            base_url.clone(),
            Duration::from_millis(options.latency_ms),
            world,
        ));
        let app = server::router(shared);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Emulator {
            base_url,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Stops accepting, lets requests in flight finish (for a few seconds
    /// at most), and returns when the server is gone.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An emulator on its own thread and tokio runtime, for synchronous callers
/// (tests that run the scsync binary as a child process). Stops on drop.
pub struct BackgroundEmulator {
    base_url: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundEmulator {
    pub fn start(seed: Seed) -> io::Result<BackgroundEmulator> {
        BackgroundEmulator::start_with(seed, Options::default())
    }

    pub fn start_with(seed: Seed, options: Options) -> io::Result<BackgroundEmulator> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<String>>();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sc-emulator".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match Emulator::start(seed, options).await {
                        Ok(emulator) => {
                            let _ = ready_tx.send(Ok(emulator.base_url()));
                            let _ = stopped.await;
                            emulator.shutdown().await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })?;
        let base_url = ready_rx
            .recv()
            .map_err(|_| io::Error::other("the emulator thread ended before it started"))??;
        Ok(BackgroundEmulator {
            base_url,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }
}

impl Drop for BackgroundEmulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
