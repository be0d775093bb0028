//! A server under attack, in a child process of its own, so that its resident memory, open
//! descriptors, tasks and log lines are its own; seen from outside through `/proc`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Set in a child server's environment.
pub(crate) const CHILD_ENV: &str = "RRSSH_ISOLATED_CHILD";
/// The directory with the child's keys.
pub(crate) const DIR_ENV: &str = "RRSSH_FLOOD_DIR";

/// What a child server does first: logs its warnings to standard error (the parent counts
/// them) and returns the directory of its keys.
pub(crate) fn child_setup() -> PathBuf {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .init();
    PathBuf::from(std::env::var_os(DIR_ENV).expect("key directory"))
}

/// What a child server runs after printing `ready`: answers `tasks` on standard input with its
/// number of live tasks.
pub(crate) async fn serve_tasks() {
    serve_tasks_of(None).await;
}

/// [`serve_tasks`], also answering `held` with what the server's budgets hold.
pub(crate) async fn serve_tasks_of(memory: Option<rrssh::budget::MemoryGauge>) {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line == "held" {
            println!("held {}", memory.as_ref().map_or(0, |m| m.held()));
            continue;
        }
        if line == "heap" {
            println!("heap {}", crate::ALLOCATOR.allocated());
            continue;
        }
        if line == "tasks" {
            let n = tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks();
            println!("tasks {n}");
        }
    }
}

/// The server process, seen from outside.
pub(crate) struct Target {
    child: Child,
    stdin: ChildStdin,
    lines: tokio::io::Lines<BufReader<ChildStdout>>,
    addrs: HashMap<String, SocketAddr>,
    warnings: Arc<AtomicUsize>,
}

impl Target {
    /// Runs the ignored test `child` of this binary as the server, with at most 1,024 open
    /// descriptors (a common default), and waits for its `ready k=ADDR …` line.
    pub(crate) async fn start(dir: &Path, child: &str) -> Self {
        Self::start_with(dir, child, &[]).await
    }

    /// [`start`](Self::start), with more environment for the child.
    pub(crate) async fn start_with(dir: &Path, child: &str, env: &[(&str, &str)]) -> Self {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 1024 && exec \"$0\" \"$@\"")
            .arg(exe)
            .args([
                "--exact",
                child,
                "--include-ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .env(DIR_ENV, dir)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let warnings = Arc::new(AtomicUsize::new(0));
        let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
        let counted = warnings.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err.next_line().await {
                if line.contains("WARN") {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            let line = lines.next_line().await.unwrap().expect("the server starts");
            // The test harness may print its own words before ours on the same line.
            if let Some(rest) = line.find("ready ").map(|i| &line[i + 6..]) {
                let addrs = rest
                    .split(' ')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.parse().unwrap()))
                    .collect();
                return Self {
                    child,
                    stdin,
                    lines,
                    addrs,
                    warnings,
                };
            }
        }
    }

    /// The address the server printed as `name=ADDR`.
    pub(crate) fn addr(&self, name: &str) -> SocketAddr {
        self.addrs[name]
    }

    fn proc_path(&self, what: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/{what}", self.child.id().unwrap()))
    }

    /// Resident memory, in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(self.proc_path("status"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Open descriptors.
    pub(crate) fn fds(&self) -> usize {
        std::fs::read_dir(self.proc_path("fd")).unwrap().count()
    }

    /// Warning lines logged so far.
    pub(crate) fn warnings(&self) -> usize {
        self.warnings.load(Ordering::Relaxed)
    }

    /// Bytes live on the server's heap.
    pub(crate) async fn heap(&mut self) -> usize {
        self.stdin.write_all(b"heap\n").await.unwrap();
        loop {
            let line = self.lines.next_line().await.unwrap().unwrap();
            if let Some(n) = line.find("heap ").map(|i| &line[i + 5..]) {
                return n.parse().unwrap();
            }
        }
    }

    /// Bytes the server's budgets hold.
    pub(crate) async fn held(&mut self) -> usize {
        self.stdin.write_all(b"held\n").await.unwrap();
        loop {
            let line = self.lines.next_line().await.unwrap().unwrap();
            if let Some(n) = line.find("held ").map(|i| &line[i + 5..]) {
                return n.parse().unwrap();
            }
        }
    }

    /// Live tasks.
    pub(crate) async fn tasks(&mut self) -> usize {
        self.stdin.write_all(b"tasks\n").await.unwrap();
        loop {
            let line = self.lines.next_line().await.unwrap().unwrap();
            if let Some(n) = line.find("tasks ").map(|i| &line[i + 6..]) {
                return n.parse().unwrap();
            }
        }
    }
}
