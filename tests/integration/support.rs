//! The test world: an emulator seeded for one test, a temp folder holding the
//! manifest, audio files and state database, and a builder that runs the real
//! `scsync` binary against them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sc_emulator::{BackgroundEmulator, Seed};
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "test-client";
pub const CLIENT_SECRET: &str = "test-secret-value";

/// A seed with the signed-in user (1), two other users, a few tracks (one
/// blocked) and a playlist by someone else, plus the registered app.
pub fn base_seed() -> Value {
    json!({
        "apps": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                  "redirect_uris": ["http://127.0.0.1/callback"]}],
        "me": 1,
        "users": [
            {"id": 1, "permalink": "me", "username": "Me"},
            {"id": 2, "permalink": "bob", "username": "Bob"},
            {"id": 3, "permalink": "carol", "username": "Carol"}
        ],
        "tracks": [
            {"id": 100, "user_id": 2, "title": "Tide", "permalink": "tide",
             "access": "playable", "sharing": "public"},
            {"id": 101, "user_id": 2, "title": "Gone", "permalink": "gone",
             "access": "blocked", "sharing": "public"},
            {"id": 102, "user_id": 3, "title": "Calm", "permalink": "calm",
             "access": "playable", "sharing": "public"}
        ],
        "playlists": [
            {"id": 200, "user_id": 3, "title": "Theirs", "permalink": "theirs",
             "sharing": "public", "set_type": "playlist", "tracks": [100]}
        ],
        "followings": {"1": []},
        "likes": {"1": {"tracks": [], "playlists": []}}
    })
}

pub struct World {
    pub dir: tempfile::TempDir,
    pub emulator: BackgroundEmulator,
    http: reqwest::blocking::Client,
}

impl World {
    pub fn new(seed: Value) -> World {
        scsync::api::install_crypto_provider();
        let seed = Seed::from_text(&seed.to_string()).expect("seed parses");
        let emulator = BackgroundEmulator::start(seed).expect("emulator starts");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("client_secret"), CLIENT_SECRET).unwrap();
        let http = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        World {
            dir,
            emulator,
            http,
        }
    }

    pub fn base_url(&self) -> String {
        self.emulator.base_url()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.path("scsync.yaml")
    }

    pub fn state_path(&self) -> PathBuf {
        self.path("state/state.db")
    }

    /// Writes `scsync.yaml`: the account section pointing at the emulator,
    /// then `body` (everything after `account:`).
    pub fn manifest(&self, body: &str) -> &World {
        // No client-side pacing and millisecond backoff: the emulator has no
        // rate limit unless a test injects one.
        const FAST: &str = "policy:\n  writes_per_minute: 100000\n  retry: { first_delay_ms: 1, max_wait_s: 30 }\n";
        let body = if body.contains("policy:\n") {
            body.replacen("policy:\n", FAST, 1)
        } else {
            format!("{FAST}{body}")
        };
        let text = format!(
            "version: 1\naccount:\n  client_id: {CLIENT_ID}\n  client_secret_file: {}\n  api_url: {}\n  auth_url: {}\n{body}",
            self.path("client_secret").display(),
            self.base_url(),
            self.base_url(),
        );
        std::fs::write(self.manifest_path(), text).unwrap();
        self
    }

    /// Writes a small real WAV file at `rel` (a distinct tone gives distinct bytes).
    pub fn wav(&self, rel: &str, tone_hz: f32) -> &World {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        scsync::audio::write_wav(&path, 200, tone_hz).unwrap();
        self
    }

    /// `scsync ARGS -c scsync.yaml --state state/state.db`.
    pub fn scsync<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_scsync"));
        cmd.args(args.into_iter().map(|a| a.as_ref().to_owned()))
            .arg("-c")
            .arg(self.manifest_path())
            .arg("--state")
            .arg(self.state_path())
            .env_remove("SCSYNC_LOG")
            .env_remove("STATE_DIRECTORY")
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path());
        Run { cmd }
    }

    /// Signs in through the emulator's `/authorize`, as a user would: run
    /// `scsync login --no-browser`, open the printed URL, follow the redirect
    /// to scsync's loopback listener.
    pub fn login(&self) -> &World {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scsync"))
            .args(["login", "--no-browser", "-c"])
            .arg(self.manifest_path())
            .arg("--state")
            .arg(self.state_path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("scsync login starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let url = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| {
                l.split_whitespace()
                    .find(|w| w.starts_with("http"))
                    .map(str::to_owned)
            })
            .expect("login prints the authorization URL");
        let redirect = self.http.get(&url).send().expect("authorize answers");
        assert_eq!(redirect.status().as_u16(), 302, "authorize redirects");
        let callback = redirect.headers()["location"].to_str().unwrap().to_owned();
        self.http
            .get(&callback)
            .send()
            .expect("loopback callback answers");
        drop(child.stdin.take());
        let status = child.wait().unwrap();
        assert!(status.success(), "scsync login succeeded");
        self
    }

    pub fn emulator_state(&self) -> Value {
        self.get_json("/_emulator/state")
    }

    /// The requests the emulator served, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        match self.get_json("/_emulator/requests") {
            Value::Array(items) => items,
            other => panic!("request log is not an array: {other}"),
        }
    }

    /// The requests that were writes (anything but GET).
    pub fn writes(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["method"] != "GET")
            .filter(|r| r["path"] != "/oauth/token")
            .collect()
    }

    pub fn clear_requests(&self) {
        let resp = self
            .http
            .delete(format!("{}/_emulator/requests", self.base_url()))
            .send()
            .unwrap();
        assert!(resp.status().is_success());
    }

    pub fn faults(&self, rules: Value) {
        let resp = self
            .http
            .post(format!("{}/_emulator/faults", self.base_url()))
            .json(&json!({ "rules": rules }))
            .send()
            .unwrap();
        assert!(resp.status().is_success(), "faults accepted");
    }

    fn get_json(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base_url()))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }
}

/// A pending `scsync` invocation.
pub struct Run {
    cmd: Command,
}

impl Run {
    pub fn env(mut self, key: &str, value: &str) -> Run {
        self.cmd.env(key, value);
        self
    }

    pub fn output(mut self) -> Done {
        self.cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Done(self.cmd.output().expect("scsync runs"))
    }

    /// Runs and asserts the exit status, printing output when it differs.
    pub fn expect(self, code: i32) -> Done {
        let done = self.output();
        assert_eq!(
            done.0.status.code(),
            Some(code),
            "unexpected exit status\n--- stdout\n{}\n--- stderr\n{}",
            done.stdout(),
            done.stderr()
        );
        done
    }
}

pub struct Done(pub Output);

impl Done {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
}

/// The path of a fixture shipped in the repository.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}
