//! A real browser: headless Chromium, driven over the DevTools protocol, opens the page, types
//! into xterm.js with key events, reads the screen, resizes the window, and sees the exit.
//!
//! Skipped when Chromium is not installed, unless `RRSSH_REQUIRE_BROWSER=1` (as in CI).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use rrssh::terminal::TerminalOptions;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio_tungstenite::tungstenite::Message;

use super::{Socket, start, tempdir};

/// Chromium, or `None` after reporting it missing (a failure when `RRSSH_REQUIRE_BROWSER` is set).
fn chromium_or_skip() -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        assert!(
            std::env::var_os("RRSSH_REQUIRE_BROWSER").is_none(),
            "RRSSH_REQUIRE_BROWSER is set but Chromium is not installed"
        );
        crate::skipped("Chromium is not installed (apt-get install chromium)");
    }
    found
}

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RRSSH_CHROMIUM") {
        return Some(p.into());
    }
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// A headless Chromium and a DevTools session attached to one page.
struct Browser {
    _child: tokio::process::Child,
    devtools: Socket,
    next_id: u64,
    session: Option<String>,
    dir: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Browser {
    /// Starts Chromium with the test's flags and `extra` ones.
    async fn launch(program: PathBuf, extra: &[String]) -> Self {
        let dir = tempdir();
        let mut child = tokio::process::Command::new(program)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1000,600",
            ])
            .arg(format!("--user-data-dir={}", dir.display()))
            .args(extra)
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromium");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return url.trim().to_owned();
                }
            }
            panic!("chromium exited without a DevTools address");
        })
        .await
        .expect("chromium prints its DevTools address");
        // Keep draining its stderr so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (devtools, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("connect to DevTools");
        Self {
            _child: child,
            devtools,
            next_id: 0,
            session: None,
            dir,
        }
    }

    /// Sends a DevTools command and waits for its result (events in between are skipped).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        self.devtools
            .send(Message::Text(msg.to_string().into()))
            .await
            .unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match self.devtools.next().await {
                    Some(Ok(Message::Text(t))) => {
                        let v: Value = serde_json::from_str(&t).unwrap();
                        if v["id"] == json!(id) {
                            return v;
                        }
                    }
                    Some(Ok(_)) => {}
                    other => panic!("DevTools connection ended: {other:?}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no reply to {method}"));
        assert!(reply.get("error").is_none(), "{method}: {reply}");
        reply["result"].clone()
    }

    /// Opens a new page at `url` and attaches to it.
    async fn open(&mut self, url: &str) {
        let target = self
            .call("Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = self
            .call(
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        self.session = Some(attached["sessionId"].as_str().unwrap().to_owned());
        self.call("Page.enable", json!({})).await;
        self.call("Page.navigate", json!({"url": url})).await;
    }

    /// Evaluates a JavaScript expression in the page and returns its value.
    async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        r["result"]["value"].clone()
    }

    /// Waits until `expression` evaluates to `want`; returns the last value.
    async fn wait_for(&mut self, expression: &str, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let v = self.eval(expression).await;
            if want(&v) || tokio::time::Instant::now() > deadline {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types text as the keyboard would, then Enter.
    async fn type_line(&mut self, text: &str) {
        self.call("Input.insertText", json!({"text": text})).await;
        for kind in ["keyDown", "keyUp"] {
            let mut ev = json!({
                "type": kind, "key": "Enter", "code": "Enter",
                "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13,
            });
            if kind == "keyDown" {
                ev["text"] = json!("\r");
            }
            self.call("Input.dispatchKeyEvent", ev).await;
        }
    }
}

/// Every line of the terminal's buffer, as the browser shows it.
const SCREEN: &str = "(() => { const b = window.rrsshTerminal.buffer.active; const out = []; \
     for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true)); \
     return out.join('\\n'); })()";
const STATUS: &str =
    "document.getElementById('status') && document.getElementById('status').textContent";

/// Whether a line of the screen says `line`, after the shell's prompt if one came first (a
/// prompt printed while the keystrokes were already on their way ends up before the output).
fn has_line(screen: &Value, line: &str) -> bool {
    screen.as_str().is_some_and(|s| {
        s.lines().any(|l| {
            let l = l.trim();
            l == line
                || l.strip_prefix(['#', '$'])
                    .is_some_and(|rest| rest.trim() == line)
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_types_into_the_terminal_reads_it_resizes_it_and_sees_the_exit() {
    let Some(program) = chromium_or_skip() else {
        return;
    };
    let (addr, web, _server, _keys) = start(TerminalOptions::new()).await;
    let mut browser = Browser::launch(program, &[]).await;
    browser
        .open(&format!("http://{addr}/?token={}", web.access_token()))
        .await;
    let status = browser.wait_for(STATUS, |v| v == &json!("connected")).await;
    assert_eq!(status, json!("connected"));

    // Keystrokes go through xterm.js, the WebSocket and SSH to the shell; its output comes back.
    browser.type_line("echo $((6*7))").await;
    let screen = browser.wait_for(SCREEN, |s| has_line(s, "42")).await;
    assert!(has_line(&screen, "42"), "the shell's answer: {screen}");

    // The program sees the size of the terminal in the page, before and after the window
    // changes size.
    let mut previous = String::new();
    for (width, height) in [(1000, 600), (640, 360)] {
        browser
            .call(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
            )
            .await;
        // Wait for the page to fit the terminal to the window: a new size, the same twice in a
        // row. The resize travels to the server ahead of the keystrokes below.
        let mut size = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = browser
                .eval("`${window.rrsshTerminal.rows} ${window.rrsshTerminal.cols}`")
                .await
                .as_str()
                .unwrap()
                .to_owned();
            let stable = now == size && now != previous;
            size = now;
            if stable || tokio::time::Instant::now() > deadline {
                break;
            }
        }
        assert_ne!(size, previous, "the terminal must fit the new window size");
        previous.clone_from(&size);
        browser.type_line("stty size").await;
        let screen = browser.wait_for(SCREEN, |s| has_line(s, &size)).await;
        assert!(
            has_line(&screen, &size),
            "stty size must say {size} at {width}×{height}: {screen}"
        );
        println!("{width}×{height} px: the program sees {size} (rows cols)");
    }

    browser.type_line("exit 3").await;
    let status = browser
        .wait_for(STATUS, |v| v == &json!("exited with status 3"))
        .await;
    assert_eq!(status, json!("exited with status 3"));
}

/// The base64 SHA-256 of the certificate's public key, as Chromium's
/// `--ignore-certificate-errors-spki-list` takes it: that one certificate is trusted, no other.
fn spki_sha256(cert: &std::path::Path) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(
            "openssl x509 -in \"$0\" -pubkey -noout | openssl pkey -pubin -outform der \
             | openssl dgst -sha256 -binary | openssl base64 -A",
        )
        .arg(cert)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_opens_the_terminal_over_https_on_the_port_that_carries_wss() {
    let Some(program) = chromium_or_skip() else {
        return;
    };
    let keys = crate::ssh::Keys::new();
    let server = crate::ssh::terminal::terminal_server(&keys).await;
    let c = crate::ssh::client(&keys, &server).connect().await.unwrap();
    let web = rrssh::terminal::web::WebTerminal::new(c).any_host();
    let token = web.access_token().to_owned();
    let dir = crate::openssh::TempDir::new("web-terminal-https");
    crate::websocket::certificates(&dir.0, "terminal");
    let cert =
        rrssh::tls::ServerCertificate::load(dir.path("cert.pem"), dir.path("key.pem")).unwrap();
    let port = rrssh::websocket::WebListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .tls(cert)
        .http(web.into_router_at("/terminal"))
        .serve(&server)
        .unwrap()
        .port();
    // SSH over WebSocket on the same port.
    let wss = rrssh::Client::builder(format!("wss://localhost:{port}"))
        .user("ada")
        .identity(keys.client.clone())
        .host_keys(rrssh::keys::HostKeyPolicy::Pinned(
            keys.host.public_key().clone(),
        ))
        .tls_roots(rrssh::tls::TrustedRoots::from_pem_file(dir.path("ca.pem")).unwrap())
        .connect()
        .await
        .expect("wss:// on the terminal's port");
    wss.close().await;

    let trust = format!(
        "--ignore-certificate-errors-spki-list={}",
        spki_sha256(&dir.path("cert.pem"))
    );
    let mut browser = Browser::launch(program, &[trust]).await;
    // Without the trailing slash: redirected to the page, the token kept.
    browser
        .open(&format!("https://localhost:{port}/terminal?token={token}"))
        .await;
    let status = browser.wait_for(STATUS, |v| v == &json!("connected")).await;
    assert_eq!(status, json!("connected"));
    let location = browser.eval("location.pathname").await;
    assert_eq!(location, json!("/terminal/"));
    browser.type_line("echo $((6*7))").await;
    let screen = browser.wait_for(SCREEN, |s| has_line(s, "42")).await;
    assert!(has_line(&screen, "42"), "the shell's answer: {screen}");
    browser.type_line("exit 3").await;
    let status = browser
        .wait_for(STATUS, |v| v == &json!("exited with status 3"))
        .await;
    assert_eq!(status, json!("exited with status 3"));
}
