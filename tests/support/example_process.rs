//! Running the fetch, crawl and trace examples as processes, built once per test binary.
//! Shared by tests/fetch_example.rs, tests/crawl_example.rs, tests/hostile_http.rs and
//! tests/deterministic.rs.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What a run of an example gave.
#[derive(Debug)]
pub struct Output {
    /// The exit code (None if killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// The one line printed for `url` (the examples end each line with the URL).
    pub fn line_for(&self, url: &str) -> &str {
        let lines: Vec<&str> = self.lines().into_iter().filter(|l| l.ends_with(&format!(" {url}"))).collect();
        assert_eq!(lines.len(), 1, "one line for {url} in {:?}", self.stdout);
        lines[0]
    }
}

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("evloop-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `target/debug/examples/<name>`, built once per test binary (`cargo build`, the
/// debug profile, as the tests; `CARGO_TARGET_DIR` respected).
pub fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--quiet", "--example", "fetch", "--example", "crawl", "--example", "trace"])
            .current_dir(&manifest);
        // The variables cargo set for this test process are not the shell's: passed on,
        // they would make build scripts that track them (ring's) rebuild, here and then
        // again in the next plain cargo command.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("CARGO_PKG_")
                || [
                    "CARGO_MANIFEST_DIR",
                    "CARGO_MANIFEST_PATH",
                    "CARGO_CRATE_NAME",
                    "CARGO_BIN_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "CARGO_RUSTC_CURRENT_DIR",
                    "OUT_DIR",
                ]
                .contains(&name.as_ref())
            {
                cargo.env_remove(name.as_ref());
            }
        }
        let status = cargo.status().expect("run cargo build");
        assert!(status.success(), "cargo build of the examples failed");
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| manifest.join("target"), PathBuf::from);
        manifest.join(target).join("debug").join("examples")
    });
    dir.join(name)
}

/// Runs example `name` with `args`, killed (and the test failed) after `limit`.
pub fn run(name: &str, args: &[&str], limit: Duration) -> Output {
    let mut command = Command::new(example(name));
    command.args(args);
    run_command(command, &format!("{name} {args:?}"), limit)
}

/// [`run`] under a limit of `fds` open files: `ulimit -n` in a shell that then becomes the
/// example.
pub fn run_with_open_file_limit(name: &str, fds: u32, args: &[&str], limit: Duration) -> Output {
    let mut command = Command::new("sh");
    command.arg("-c").arg(format!("ulimit -n {fds} && exec \"$0\" \"$@\"")).arg(example(name)).args(args);
    run_command(command, &format!("{name} under ulimit -n {fds}"), limit)
}

/// Runs `command`, its output captured, killed (and the test failed) after `limit`.
fn run_command(mut command: Command, what: &str, limit: Duration) -> Output {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = reader(Box::new(child.stdout.take().unwrap()));
    let stderr = reader(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {limit:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    Output { code: status.code(), stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap(), elapsed }
}
