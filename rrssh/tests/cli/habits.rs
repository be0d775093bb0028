//! The tool as users of `ssh`, `curl` and `httpie` reach for it: targets and options as `ssh`
//! takes them, a shell fed from a pipe, several tunnels and a SOCKS5 proxy, httpie's request
//! items, bytes as they arrive, one-line errors, completions and the man page, and the
//! commands that run until stopped started before their server.

use super::*;

/// `ARGS… COMMAND`: the setup's options before the remote command (which takes the rest).
fn before_command<'a>(s: &'a Setup, args: &[&'a str], command: &[&'a str]) -> Vec<&'a str> {
    let mut v = s.args(args);
    v.extend_from_slice(command);
    v
}

/// The setup's server as `ada@127.0.0.1` and its port.
fn host_and_port(s: &Setup) -> (String, String) {
    let port = s.target.rsplit(':').next().unwrap().to_owned();
    ("ada@127.0.0.1".to_owned(), port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_as_ssh_takes_it_piped_input_flags_and_targets() {
    let s = setup("habit-shell").await;
    let (host, port) = host_and_port(&s);
    // Piped input, no terminal: the shell reads it to its end and exits (it used to wait).
    let out = rrssh(
        &s.args(&["shell", &host, "-p", &port]),
        Some("echo from-stdin\n"),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "from-stdin\n");
    // A remote command with its own flags, after the target; stdout and stderr kept apart.
    let dir = s.dir.0.display().to_string();
    let out = rrssh(
        &before_command(
            &s,
            &["shell", "-l", "ada", &format!("127.0.0.1:{port}")],
            &["ls", "-la", &dir, ";", "echo", "oops", ">&2", ";", "tty"],
        ),
        None,
    )
    .await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains("known_hosts"), "{stdout}");
    assert!(stdout.contains("not a tty"), "{stdout}");
    assert!(!stdout.contains("oops"), "{stdout}");
    assert_eq!(text(&out.stderr), "oops\n");
    // -p before the target's own port, as ssh: a wrong port in the target is overridden.
    let out = rrssh(
        &before_command(
            &s,
            &["shell", "ada@127.0.0.1:1", "-p", &port],
            &["exit", "4"],
        ),
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    // A target that is no target says what the forms are.
    let out = rrssh(&s.args(&["shell", "http://127.0.0.1"]), None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unknown scheme `http://`"),
        "{}",
        text(&out.stderr)
    );
}

/// A one-page HTTP server on loopback; returns its port.
async fn web_page() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut head = [0u8; 1024];
                let _ = c.read(&mut head).await;
                let page = "<h1>through the tunnel</h1>";
                let _ = c
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                            page.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_tunnels_and_a_socks_proxy_curl_fetches_through() {
    let s = setup("habit-forward").await;
    let upper = upper_service().await;
    let page = web_page().await;
    let (a, b, socks) = (free_port(), free_port(), free_port());
    let (_child, first) = running(&s.args(&[
        "forward",
        "-N",
        "-L",
        &format!("{a}:127.0.0.1:{upper}"),
        "-L",
        &format!("127.0.0.1:{b}:127.0.0.1:{upper}"),
        "-D",
        &socks.to_string(),
        &s.target,
    ]))
    .await;
    assert!(
        first.starts_with(&format!("forwarding 127.0.0.1:{a}")),
        "{first}"
    );
    assert_eq!(exchange(a, "one").await, "ONE");
    assert_eq!(exchange(b, "two").await, "TWO");
    // curl through the SOCKS5 proxy, the name resolved by the server's side.
    let out = tokio::process::Command::new("curl")
        .args(["-s", "--max-time", "10", "--socks5-hostname"])
        .arg(format!("127.0.0.1:{socks}"))
        .arg(format!("http://127.0.0.1:{page}/"))
        .output()
        .await;
    let Ok(out) = out else {
        assert!(
            std::env::var_os("RRSSH_REQUIRE_CURL").is_none(),
            "curl is required"
        );
        super::openssh::skip("curl through rrssh forward -D: curl is not installed");
        return;
    };
    assert_eq!(text(&out.stdout), "<h1>through the tunnel</h1>");
    // A target the server does not permit: curl is told (SOCKS "not allowed"), and fails.
    let out = tokio::process::Command::new("curl")
        .args(["-s", "--max-time", "10", "--socks5"])
        .arg(format!("127.0.0.1:{socks}"))
        .arg("http://10.255.255.1:80/")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    // Bad specs are refused before anything is dialed.
    let out = rrssh(&s.args(&["forward", "-D", "nonsense", &s.target]), None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("expected [BIND:]PORT"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_takes_httpie_items_headers_and_raw_bodies() {
    let s = setup("habit-call").await;
    let t = s.target.as_str();
    let json_of = |o: &Output| -> Value {
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|_| panic!("{} {}", text(&o.stdout), text(&o.stderr)))
    };
    // key=value and key:=json make the JSON body; it used to be a query, answered 415.
    let out = rrssh(
        &s.args(&[
            "call",
            t,
            "POST",
            "/items",
            "name=pears",
            "qty:=2",
            "tags:=[\"a\"]",
        ]),
        None,
    )
    .await;
    assert_eq!(
        json_of(&out),
        json!({"created": {"name": "pears", "qty": 2, "tags": ["a"]}})
    );
    // key==value goes to the query, Name:value and -H are headers.
    let out = rrssh(
        &s.args(&["call", t, "POST", "/echo", "page==2", "X-Trace:abc", "n:=1"]),
        None,
    )
    .await;
    let v = json_of(&out);
    assert_eq!(
        (&v["query"], &v["trace"], &v["type"], &v["body"]),
        (
            &json!("page=2"),
            &json!("abc"),
            &json!("application/json"),
            &json!("{\"n\":1}")
        )
    );
    // -d @file: the bytes as they are, typed by -H Content-Type.
    std::fs::write(s.dir.path("note.txt"), "plain words\n").unwrap();
    let at = format!("@{}", s.dir.path("note.txt").display());
    let out = rrssh(
        &s.args(&[
            "call",
            t,
            "POST",
            "/echo",
            "-d",
            &at,
            "-H",
            "Content-Type: text/plain",
            "-H",
            "X-Trace: from-h",
        ]),
        None,
    )
    .await;
    let v = json_of(&out);
    assert_eq!(
        (&v["body"], &v["type"], &v["trace"]),
        (
            &json!("plain words\n"),
            &json!("text/plain"),
            &json!("from-h")
        )
    );
    // -d - reads standard input.
    let out = rrssh(
        &s.args(&["call", t, "POST", "/echo", "-d", "-"]),
        Some("[1,2]"),
    )
    .await;
    assert_eq!(json_of(&out)["body"], "[1,2]");
    // Mistakes are refused before anything is sent, each in its words.
    for (args, says) in [
        (vec!["GET", "/users/7", "full=true"], "write `full==…`"),
        (vec!["POST", "/items", "n:={nope"], "is not JSON"),
        (vec!["POST", "/items", "lonely"], "not a request item"),
        (vec!["POST", "/items", "a=1", "-d", "x"], "give one body"),
        (vec!["POST", "/items", "-H", "NoColon"], "Name: value"),
    ] {
        let mut all = vec!["call", t];
        all.extend(args);
        let out = rrssh(&s.args(&all), None).await;
        assert_eq!(out.status.code(), Some(1), "{all:?}");
        assert!(
            text(&out.stderr).contains(says),
            "{all:?}: {}",
            text(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_are_written_as_they_arrive_and_a_server_without_relay_is_no_hub() {
    use tokio::io::AsyncBufReadExt;
    let s = setup("habit-bytes").await;
    let mut child = tokio::process::Command::new(BIN)
        .args(s.args(&["call", &s.target, "GET", "/bytes"]))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap();
    let at_first = std::time::Instant::now();
    // The first chunk is on stdout while the server is still making the second.
    assert_eq!(first.as_deref(), Some("first"));
    assert!(child.try_wait().unwrap().is_none(), "still running");
    let second = lines.next_line().await.unwrap();
    assert_eq!(second.as_deref(), Some("second"));
    assert!(
        at_first.elapsed() >= Duration::from_millis(250),
        "the second chunk came {:?} after the first: the body was collected whole",
        at_first.elapsed()
    );
    assert!(child.wait().await.unwrap().success());

    // hub://… against a server that relays nothing says so, not just 404.
    let hub_target = s.target.replace("ssh://", "hub://") + "/billing";
    let out = rrssh(&s.args(&["call", &hub_target, "GET", "/invoices"]), None).await;
    assert_eq!(out.status.code(), Some(4));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("rrssh: 404 Not Found: no route for GET"),
        "{stderr}"
    );
    assert!(stderr.contains("127.0.0.1 is not a hub"), "{stderr}");
    assert!(stderr.contains("rrssh serve --relay"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_man_pages_describe_the_tool() {
    let out = rrssh(&["completions", "bash"], None).await;
    let bash = text(&out.stdout);
    assert!(bash.contains("_rrssh()") && bash.contains("complete -F _rrssh"));
    // The script is valid bash.
    let dir = Dir::new("completions");
    std::fs::write(dir.path("rrssh.bash"), &bash).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(dir.path("rrssh.bash"))
        .status()
        .unwrap();
    assert!(check.success());
    let zsh = text(&rrssh(&["completions", "zsh"], None).await.stdout);
    assert!(zsh.starts_with("#compdef rrssh"), "{zsh:.80}");
    let fish = text(&rrssh(&["completions", "fish"], None).await.stdout);
    assert!(fish.contains("complete -c rrssh"));
    let out = rrssh(&["completions", "tcsh"], None).await;
    assert_eq!(out.status.code(), Some(2));

    let man = text(&rrssh(&["man"], None).await.stdout);
    assert!(man.contains(".TH rrssh 1"), "{man:.200}");
    assert!(man.contains("REST\\-style JSON APIs"), "{man:.400}");
    let call = text(&rrssh(&["man", "call"], None).await.stdout);
    assert!(call.contains(".TH rrssh-call 1"), "{call:.200}");
    assert!(call.contains(env!("CARGO_PKG_VERSION")), "{call:.200}");
    assert!(call.contains("key:=json"), "the page has the help's items");
    let out = rrssh(&["man", "nope"], None).await;
    assert_eq!(out.status.code(), Some(1));
    // Each command's help has examples.
    for command in [
        "call", "stream", "shell", "forward", "serve", "hub", "gateway", "peers",
    ] {
        let help = text(&rrssh(&[command, "--help"], None).await.stdout);
        assert!(help.contains("Examples:"), "{command}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_commands_wait_for_a_server_started_after_them() {
    let dir = Dir::new("habit-late");
    let id = dir.path("id");
    let key = generate_ed25519("late");
    rrssh::keys::write_key_pair(&key, &id).unwrap();
    let host = generate_ed25519("host");
    let port = free_port();
    std::fs::write(
        dir.path("known_hosts"),
        format!(
            "[127.0.0.1]:{port} {}\n",
            host.public_key().to_openssh().unwrap()
        ),
    )
    .unwrap();
    let upper = upper_service().await;
    let local = free_port();
    let common = |rest: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = rest.iter().map(|s| (*s).to_owned()).collect();
        v.extend([
            "-i".to_owned(),
            id.display().to_string(),
            "--known-hosts".to_owned(),
            dir.path("known_hosts").display().to_string(),
            "--reconnect-max".to_owned(),
            "300ms".to_owned(),
        ]);
        v
    };
    let target = format!("ssh://ada@127.0.0.1:{port}");
    // Started before the server: they wait (they used to exit at once).
    let forward_args = common(&[
        "forward",
        "-L",
        &format!("{local}:127.0.0.1:{upper}"),
        &target,
    ]);
    let mut forward = tokio::process::Command::new(BIN)
        .args(&forward_args)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let watch_args = common(&["peers", "--watch", "--color", "never", &target]);
    let mut watch = tokio::process::Command::new(BIN)
        .args(&watch_args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(forward.try_wait().unwrap().is_none(), "forward gave up");
    assert!(watch.try_wait().unwrap().is_none(), "peers --watch gave up");
    let server = Server::new()
        .router(app())
        .host_key(host)
        .authorized_keys(
            AuthorizedKeys::parse(&key.public_key().to_openssh().unwrap(), "authorized_keys")
                .unwrap()
                .owned_by("ada"),
        )
        .permit_open(rrssh::tunnel::PermitOpen::parse("127.0.0.1:*").unwrap())
        .relay(true)
        .bind(&format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    // The forward carries once the server is up (its listener opens after its first
    // connection).
    let mut carried = String::new();
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", local))
            .await
            .is_ok()
        {
            carried = exchange(local, "late").await;
            if carried == "LATE" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(carried, "LATE");
    // The watcher reports the hub lost when it goes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(server);
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(watch.stderr.take().unwrap()).lines();
    let lost = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if message(&line).starts_with("lost ") {
                return message(&line);
            }
        }
        String::new()
    })
    .await
    .expect("peers --watch must report the lost hub");
    assert!(
        lost.contains(&format!("lost ssh://127.0.0.1:{port}")),
        "{lost}"
    );
    let _ = forward.kill().await;
    let _ = watch.kill().await;
}
