//! `rrssh serve`, `rrssh gateway` and `rrssh peers --watch`: servers, gateways and watchers
//! from the command line alone, and what each command's help lists.

use super::*;

/// `rrssh serve ARGS` with a fresh host key and `authorized` as its authorized_keys, run as
/// the user `ada`; returns it, its address and a known_hosts file for it.
pub(super) async fn serve(
    dir: &Dir,
    authorized: &str,
    args: &[&str],
) -> (tokio::process::Child, String, PathBuf) {
    std::fs::write(dir.path("authorized_keys"), authorized).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args([
        "serve",
        "--listen",
        &listen,
        "--create-host-key",
        "--host-key",
    ])
    .arg(dir.path("host"))
    .arg("--authorized-keys")
    .arg(dir.path("authorized_keys"))
    .args(args)
    .env("USER", "ada");
    let (child, first) = super::running_cmd(cmd).await;
    assert!(
        first.starts_with(&format!("server listening on {listen}")),
        "{first}"
    );
    let host = load_private_key(dir.path("host"), None).unwrap();
    let (h, p) = listen.split_once(':').unwrap();
    let kh = dir.path("known_hosts");
    std::fs::write(
        &kh,
        format!("[{h}]:{p} {}\n", host.public_key().to_openssh().unwrap()),
    )
    .unwrap();
    (child, listen, kh)
}

/// A key written to `dir/name`; returns it and its authorized_keys line.
pub(super) fn key(dir: &Dir, name: &str, options: &str) -> (PathBuf, String) {
    let k = generate_ed25519(name);
    let path = dir.path(name);
    rrssh::keys::write_key_pair(&k, &path).unwrap();
    (
        path,
        format!("{options}{}\n", k.public_key().to_openssh().unwrap()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_then_shell_forward_and_webshell_from_the_command_line_alone() {
    let dir = Dir::new("serve");
    // Granted a terminal (`--terminal` serves only such keys).
    let (id, line) = key(&dir, "id", "pty ");
    let service = super::upper_service().await;
    let (_server, listen, kh) = serve(
        &dir,
        &line,
        &[
            "--terminal",
            "--permit-open",
            &format!("127.0.0.1:{service}"),
        ],
    )
    .await;
    let target = format!("ssh://ada@{listen}");
    let login = [
        "-i",
        id.to_str().unwrap(),
        "--known-hosts",
        kh.to_str().unwrap(),
    ];
    let with = |head: &[&'static str]| -> Vec<String> {
        head.iter()
            .map(|s| (*s).to_owned())
            .chain(login.iter().map(|s| (*s).to_owned()))
            .collect()
    };

    let mut args = with(&["shell"]);
    args.insert(1, target.clone());
    args.push("echo served-$RRSSH_USER; exit 4".to_owned());
    let out = rrssh(&args.iter().map(String::as_str).collect::<Vec<_>>(), None).await;
    assert!(
        text(&out.stdout).contains("served-ada"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(4));

    let local = free_port();
    let spec = format!("{local}:127.0.0.1:{service}");
    let mut args = with(&["forward", "-L"]);
    args.insert(2, spec);
    args.insert(3, target.clone());
    let (mut fwd, first) = running(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert!(first.starts_with("forwarding"), "{first}");
    assert_eq!(exchange(local, "cli alone").await, "CLI ALONE");
    let _ = fwd.kill().await;

    // A target the server does not permit: the tool says so once and stops.
    let other = free_port();
    let spec = format!("{}:127.0.0.1:{other}", free_port());
    let local = spec.split(':').next().unwrap().parse::<u16>().unwrap();
    let mut args = with(&["forward", "-L"]);
    args.insert(2, spec.clone());
    args.insert(3, target.clone());
    let child = tokio::process::Command::new(BIN)
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut tries = 0;
    while tokio::net::TcpStream::connect(("127.0.0.1", local))
        .await
        .is_err()
        && tries < 200
    {
        tries += 1;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("forward must stop on a forbidden target")
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("does not permit tunnels to 127.0.0.1"),
        "{err}"
    );

    let web = format!("127.0.0.1:{}", free_port());
    let mut args = with(&["webshell"]);
    args.insert(1, target.clone());
    args.push("--listen".to_owned());
    args.push(web.clone());
    let (mut ws, first) = running(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert!(
        first.contains(&format!("open http://{web}/?token=")),
        "{first}"
    );
    let _ = ws.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_on_a_client_node_answers_curl() {
    let s = setup("client-gateway").await;
    let listen = format!("127.0.0.1:{}", free_port());
    let token = "0b6c5e1f9d8a47c3b2e1f0a9d8c7b6a5";
    std::fs::write(s.dir.path("tokens"), format!("local {token}\n")).unwrap();
    let tokens = s.dir.path("tokens");
    let (mut gw, first) = running(&s.args(&[
        "gateway",
        &s.target,
        "--listen",
        &listen,
        "--tokens",
        tokens.to_str().unwrap(),
    ]))
    .await;
    assert!(
        first.starts_with(&format!("gateway listening on http://{listen}")),
        "{first}"
    );
    let curl = |args: Vec<String>| async move {
        let out = tokio::process::Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}"])
            .args(args)
            .output()
            .await;
        out.ok().map(|o| text(&o.stdout))
    };
    let Some(answer) = curl(vec![
        "-H".into(),
        format!("Authorization: Bearer {token}"),
        format!("http://{listen}/users/7"),
    ])
    .await
    else {
        assert!(
            std::env::var_os("RRSSH_REQUIRE_CURL").is_none(),
            "curl is required"
        );
        super::openssh::skip("the client-node gateway with curl: curl is not installed");
        return;
    };
    assert_eq!(answer, "{\"id\":7,\"name\":\"ada\"}\n200", "{answer}");
    let answer = curl(vec![format!("http://{listen}/users/7")])
        .await
        .unwrap();
    assert!(answer.ends_with("401"), "{answer}");
    assert!(answer.contains("\"status\":401"), "{answer}");
    let _ = gw.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_watch_sees_a_service_connect_and_leave() {
    use tokio::io::AsyncBufReadExt;
    let dir = Dir::new("watch");
    let (id, caller) = key(&dir, "caller", "rrssh-scopes=\"call:*\" ");
    let svc_key = generate_ed25519("svc");
    let svc_line = format!(
        "rrssh-services=\"inventory\" {}\n",
        svc_key.public_key().to_openssh().unwrap()
    );
    let (_server, listen, kh) = serve(&dir, &format!("{caller}{svc_line}"), &["--relay"]).await;
    let mut watch = tokio::process::Command::new(BIN)
        .args([
            "peers",
            "--watch",
            &format!("ssh://ada@{listen}"),
            "--color",
            "always",
            "-i",
        ])
        .arg(&id)
        .arg("--known-hosts")
        .arg(&kh)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("a line from the watcher")
            .unwrap()
            .unwrap()
    };
    assert!(next().await.starts_with("watching"));
    let host = load_private_key(dir.path("host"), None).unwrap();
    let svc = super::reverse_service(&listen, "ada", svc_key, &host, "inventory").await;
    let line = next().await;
    assert!(line.starts_with("connected    inventory"), "{line}");
    svc.close().await;
    let line = next().await;
    assert!(line.starts_with("disconnected inventory"), "{line}");
    let _ = watch.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_command_lists_only_its_own_options() {
    let help = |cmd: &'static str| async move { text(&rrssh(&[cmd, "--help"], None).await.stdout) };
    let keygen = help("keygen").await;
    for absent in ["--timeout", "--known-hosts", "--identity", "--color"] {
        assert!(
            !keygen.contains(absent),
            "keygen --help lists {absent}:\n{keygen}"
        );
    }
    let call = help("call").await;
    for present in [
        "--timeout",
        "--known-hosts",
        "--identity",
        "--color",
        "--password-file",
        "--jump",
    ] {
        assert!(
            call.contains(present),
            "call --help lacks {present}:\n{call}"
        );
    }
    let forward = help("forward").await;
    assert!(
        forward.contains("--reconnect-max") && !forward.contains("--color"),
        "{forward}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_openapi_prints_the_servers_document() {
    let s = setup("openapi").await;
    let out = rrssh(
        &s.args(&["routes", &s.target, "--openapi", "--color", "never"]),
        None,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let op = &doc["paths"]["/users/{id}"]["get"];
    assert_eq!(op["operationId"], "get_user");
    assert_eq!(op["summary"], "Fetches a user.");
    assert_eq!(op["parameters"][0]["name"], "id");
    assert_eq!(op["parameters"][0]["schema"]["type"], "integer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_signs_a_key_and_the_server_trusting_it_lets_it_in() {
    let dir = Dir::new("ca");
    let (ca, id) = (dir.path("ca"), dir.path("id"));
    let out = rrssh(&["ca", "init", "-f", ca.to_str().unwrap()], None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("--trusted-user-ca"),
        "{}",
        text(&out.stdout)
    );
    let again = rrssh(&["ca", "init", "-f", ca.to_str().unwrap()], None).await;
    assert!(!again.status.success(), "never overwrites a CA");
    let out = rrssh(&["keygen", "-f", id.to_str().unwrap(), "-C", "ada"], None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = rrssh(
        &[
            "ca",
            "sign",
            "--ca",
            ca.to_str().unwrap(),
            "-n",
            "ada,deploy",
            "-I",
            "ada-laptop",
            "-z",
            "5",
            "--ttl",
            "10m",
            "--grant",
            "scopes=call:billing",
            dir.path("id.pub").to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("id-cert.pub"), "{said}");
    assert!(
        said.contains("\"ada-laptop\", serial 5, for ada,deploy"),
        "{said}"
    );
    let cert = rrssh::keys::Certificate::read_file(&dir.path("id-cert.pub")).unwrap();
    assert_eq!(cert.key_id(), "ada-laptop");
    assert_eq!(cert.valid_principals(), ["ada", "deploy"]);
    assert_eq!(
        cert.extensions().get("scopes@rrssh").map(String::as_str),
        Some("call:billing")
    );
    let bad = rrssh(
        &[
            "ca",
            "sign",
            "--ca",
            ca.to_str().unwrap(),
            "-n",
            "ada",
            "--grant",
            "powers=all",
            dir.path("id.pub").to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("services, scopes and groups"),
        "{}",
        text(&bad.stderr)
    );

    // A server trusting the CA, with no key of its own for ada: `-i id` finds id-cert.pub.
    let (_server, listen, kh) = serve(
        &dir,
        "",
        &[
            "--trusted-user-ca",
            dir.path("ca.pub").to_str().unwrap(),
            "--terminal",
        ],
    )
    .await;
    let shell = |user: &str, command: &str| {
        let (target, command) = (format!("ssh://{user}@{listen}"), command.to_owned());
        let (id, kh) = (id.clone(), kh.clone());
        async move {
            let args = [
                "shell",
                &target,
                "-i",
                id.to_str().unwrap(),
                "--known-hosts",
                kh.to_str().unwrap(),
                &command,
            ];
            rrssh(&args, None).await
        }
    };
    let out = shell("ada", "echo via-$RRSSH_USER").await;
    assert!(
        text(&out.stdout).contains("via-ada"),
        "{}",
        text(&out.stderr)
    );
    // As a name the certificate does not give: refused.
    let out = shell("root", "echo no").await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("certificate ada-laptop"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_host_key_is_refused_and_an_open_one_too() {
    let dir = Dir::new("host-key");
    let (_, line) = key(&dir, "id", "");
    std::fs::write(dir.path("authorized_keys"), line).unwrap();
    rrssh::keys::write_key_pair(&generate_ed25519("host"), dir.path("host_key")).unwrap();
    let run = |host: &str| {
        std::process::Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
            .arg("--host-key")
            .arg(dir.path(host))
            .arg("--authorized-keys")
            .arg(dir.path("authorized_keys"))
            .env("USER", "ada")
            .output()
            .unwrap()
    };
    let typo = run("host_kye");
    assert_eq!(typo.status.code(), Some(1));
    let err = String::from_utf8_lossy(&typo.stderr);
    assert!(
        err.contains("host_kye: no such file; give --create-host-key"),
        "{err}"
    );
    assert!(!dir.path("host_kye").exists(), "no key is made on a typo");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path("host_key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = run("host_key");
    assert_eq!(open.status.code(), Some(1));
    let err = String::from_utf8_lossy(&open.stderr);
    assert!(err.contains("permissions 0644 are too open"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_say_what_is_wrong_once_and_how_to_fix_it() {
    let dir = Dir::new("messages");
    let key = generate_ed25519("k");
    let id = dir.path("id");
    rrssh::keys::write_key_pair(&key, &id).unwrap();
    std::fs::write(
        dir.path("authorized_keys"),
        format!("{}\n", key.public_key().to_openssh().unwrap()),
    )
    .unwrap();
    let stderr = |out: Output| text(&out.stderr);
    // A missing key: its path once.
    let err = stderr(
        rrssh(
            &["call", "ssh://127.0.0.1:1", "GET", "/", "-i", "nokey"],
            None,
        )
        .await,
    );
    assert_eq!(err.matches("nokey").count(), 1, "{err}");
    // The public half instead of the private one.
    let public = format!("{}.pub", id.display());
    let err = stderr(
        rrssh(
            &["call", "ssh://127.0.0.1:1", "GET", "/", "-i", &public],
            None,
        )
        .await,
    );
    assert!(
        err.contains(&format!(
            "this is a public key; give the private one ({})",
            id.display()
        )),
        "{err}"
    );
    let serve = |listen: &str, authorized: PathBuf| {
        let listen = listen.to_owned();
        let host = dir.path("host");
        async move {
            tokio::process::Command::new(BIN)
                .args([
                    "serve",
                    "--listen",
                    &listen,
                    "--create-host-key",
                    "--host-key",
                ])
                .arg(host)
                .arg("--authorized-keys")
                .arg(authorized)
                .env("USER", "ada")
                .output()
                .await
                .unwrap()
        }
    };
    // A missing authorized_keys: no line number.
    let err = stderr(serve("127.0.0.1:0", dir.path("nofile")).await);
    assert!(err.contains("nofile: No such file"), "{err}");
    assert!(!err.contains("line 0"), "{err}");
    // An address without a port, and one in use: the address, and what to give.
    let err = stderr(serve("localhost", dir.path("authorized_keys")).await);
    assert!(err.contains("--listen localhost: cannot listen"), "{err}");
    assert!(err.contains("give HOST:PORT"), "{err}");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let err = stderr(serve(&addr, dir.path("authorized_keys")).await);
    assert!(
        err.contains(&format!("--listen {addr}: cannot listen")),
        "{err}"
    );
    assert!(err.to_lowercase().contains("in use"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_user_in_the_environment_the_server_belongs_to_the_passwd_account() {
    let dir = Dir::new("no-user");
    let key = generate_ed25519("k");
    std::fs::write(
        dir.path("authorized_keys"),
        format!("{}\n", key.public_key().to_openssh().unwrap()),
    )
    .unwrap();
    let me = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let me = text(&me.stdout).trim().to_owned();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args([
        "serve",
        "--listen",
        &listen,
        "--create-host-key",
        "--host-key",
    ])
    .arg(dir.path("host"))
    .arg("--authorized-keys")
    .arg(dir.path("authorized_keys"))
    .env_remove("USER")
    .env_remove("LOGNAME");
    let (_server, first) = super::running_cmd(cmd).await;
    assert!(first.starts_with("server listening"), "{first}");
    let host = load_private_key(dir.path("host"), None).unwrap();
    // The key logs in as the account running the server, found in the passwd file.
    let c = rrssh::Client::builder(&listen)
        .user(&me)
        .identity(key)
        .host_keys(rrssh::keys::HostKeyPolicy::Pinned(
            host.public_key().clone(),
        ))
        .no_proxy()
        .connect()
        .await;
    assert!(c.is_ok(), "{me}: {:?}", c.err());
}
