//! `--config FILE`: the same settings as flags give the same server; flags override the file;
//! `--check-config` prints what is in effect and checks the files it names; mistakes in the file
//! are named. And the log: JSON lines with `--log-format json`, nothing but errors with `-q`.

use super::*;

/// The flags of a server, and the same settings as a file.
const FLAGS: &[&str] = &[
    "--max-calls-per-key",
    "7",
    "--grace",
    "3s",
    "--permit-open",
    "127.0.0.1:9,127.0.0.1:10",
    "--relay",
];

const FILE: &str = r#"
# The same settings as FLAGS.
max-calls-per-key = 7
grace = "3s"
permit_open = "127.0.0.1:9,127.0.0.1:10"
relay = true
"#;

fn files(dir: &Dir) -> Vec<String> {
    vec![
        "--host-key".into(),
        dir.path("host").display().to_string(),
        "--create-host-key".into(),
        "--authorized-keys".into(),
        dir.path("authorized_keys").display().to_string(),
    ]
}

async fn serve(args: &[&str], dir: &Dir) -> Output {
    let mut all = vec!["serve"];
    all.extend_from_slice(args);
    let files = files(dir);
    all.extend(files.iter().map(String::as_str));
    tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(BIN)
            .args(&all)
            .env("USER", "ada")
            .output(),
    )
    .await
    .expect("rrssh finishes")
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_gives_what_its_flags_give_and_flags_override_it() {
    let dir = Dir::new("config");
    let (id, _) = hub_keys(&dir);
    let config = dir.path("rrssh.toml");
    std::fs::write(&config, FILE).unwrap();
    let config = config.to_str().unwrap();

    // The settings in effect, printed by --check-config, are the same either way.
    let by_flags = serve(&[&["--check-config"], FLAGS].concat(), &dir).await;
    assert!(by_flags.status.success(), "{}", text(&by_flags.stderr));
    let by_file = serve(&["--check-config", "--config", config], &dir).await;
    assert!(by_file.status.success(), "{}", text(&by_file.stderr));
    let settings = |out: &Output| {
        text(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with("# --host-key") && !l.starts_with("# configuration OK"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    println!("{}", text(&by_file.stdout));
    assert_eq!(settings(&by_flags), settings(&by_file));
    let listed = text(&by_file.stdout);
    for line in [
        "max-calls-per-key = 7\n",
        "grace = \"3s\"\n",
        "permit-open = \"127.0.0.1:9,127.0.0.1:10\"\n",
        "relay = true\n",
        "# listen = \"127.0.0.1:8022\" (default)\n",
        "# per-key-memory = \"256M\" (default)\n",
    ] {
        assert!(listed.contains(line), "{line} in {listed}");
    }
    assert!(
        listed.contains("# configuration OK: server with host key SHA256:"),
        "{listed}"
    );
    assert!(
        listed.contains("tunnels to 127.0.0.1:9,127.0.0.1:10"),
        "{listed}"
    );
    // Checking made no host key.
    assert!(!dir.path("host").exists());

    // The settings in effect read back as a file, to the same settings.
    std::fs::write(dir.path("again.toml"), &listed).unwrap();
    let again = serve(
        &[
            "--check-config",
            "--config",
            dir.path("again.toml").to_str().unwrap(),
        ],
        &dir,
    )
    .await;
    assert_eq!(settings(&again), settings(&by_file));

    // Run from the file, with a flag overriding its listen address: the server listens there
    // and serves what the file says (caller access to its reverse services; its tunnels).
    let listen = format!("127.0.0.1:{}", free_port());
    let files = files(&dir);
    let mut args = vec!["serve", "--config", config, "--listen", &listen];
    args.extend(files.iter().map(String::as_str));
    let (_server, first) = running_cmd({
        let mut c = tokio::process::Command::new(BIN);
        c.args(&args).env("USER", "ada");
        c
    })
    .await;
    assert!(
        first.starts_with(&format!("server listening on {listen}")),
        "{first}"
    );
    assert!(
        first.contains("tunnels to 127.0.0.1:9,127.0.0.1:10"),
        "{first}"
    );
    assert!(first.contains("caller access"), "{first}");
    let host = load_private_key(dir.path("host"), None).unwrap();
    let (h, p) = listen.split_once(':').unwrap();
    std::fs::write(
        dir.path("known_hosts"),
        format!("[{h}]:{p} {}\n", host.public_key().to_openssh().unwrap()),
    )
    .unwrap();
    let out = rrssh(
        &[
            "peers",
            &format!("ssh://ada@{listen}"),
            "-i",
            id.to_str().unwrap(),
            "--known-hosts",
            dir.path("known_hosts").to_str().unwrap(),
        ],
        None,
    )
    .await;
    // A server with --relay lists its peers (none yet) to a caller granted `call:*`.
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistakes_in_a_config_file_and_in_what_it_names_are_refused() {
    let dir = Dir::new("config-bad");
    hub_keys(&dir);
    let config = dir.path("bad.toml");
    let check = async |toml: &str| {
        std::fs::write(&config, toml).unwrap();
        serve(
            &["--check-config", "--config", config.to_str().unwrap()],
            &dir,
        )
        .await
    };
    let out = check("lisen = \"127.0.0.1:1\"\n").await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("unknown setting `lisen` for rrssh serve; did you mean `listen`?"),
        "{err}"
    );
    assert!(err.contains("bad.toml"), "{err}");
    let out = check("grace = \n").await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("line 1"),
        "{}",
        text(&out.stderr)
    );
    // A value clap refuses is refused as the flag would be.
    let out = check("grace = \"5y\"\n").await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown unit `y`"),
        "{}",
        text(&out.stderr)
    );
    // A file the settings name is read and checked, and its error named.
    std::fs::write(dir.path("broken_keys"), "ssh-ed25519 not-base64\n").unwrap();
    let out = check(&format!(
        "authorized-keys = \"{}\"\n",
        dir.path("broken_keys").display()
    ))
    .await;
    // (The command line's --authorized-keys overrides the file's: checked is the good one.)
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = tokio::process::Command::new(BIN)
        .args(["serve", "--check-config", "--create-host-key", "--host-key"])
        .arg(dir.path("host"))
        .arg("--authorized-keys")
        .arg(dir.path("broken_keys"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("--authorized-keys"), "{err}");
    assert!(err.contains("broken_keys"), "{err}");
    // An address that is no HOST:PORT.
    let out = check("listen = \"localhost\"\n").await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("give HOST:PORT"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_as_json_lines_or_only_errors() {
    let dir = Dir::new("logs");
    let (id, _) = hub_keys(&dir);
    let listen = format!("127.0.0.1:{}", free_port());
    let files = files(&dir);
    let mut args = vec!["-v", "--log-format", "json", "hub", "--listen", &listen];
    args.extend(files.iter().map(String::as_str));
    let mut hub = tokio::process::Command::new(BIN)
        .args(&args)
        .env("USER", "ada")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(hub.stdout.take().unwrap()).lines();
    // The first line of JSON whose message starts with `prefix`.
    let mut find = async move |prefix: &str| {
        let wait = async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let v: Value = serde_json::from_str(&line).expect("every line is JSON");
                if v["message"].as_str().unwrap_or("").starts_with(prefix) {
                    return v;
                }
            }
            panic!("no line `{prefix}…`")
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .unwrap()
    };
    let v = find("hub listening on").await;
    assert_eq!(v["level"], "INFO", "{v}");
    assert!(v["message"].as_str().unwrap().contains(&listen), "{v}");
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'), "{v}");
    // A caller's connection logs in its span: its id, carrier, address, user and key.
    let host = load_private_key(dir.path("host"), None).unwrap();
    let (h, p) = listen.split_once(':').unwrap();
    std::fs::write(
        dir.path("known_hosts"),
        format!("[{h}]:{p} {}\n", host.public_key().to_openssh().unwrap()),
    )
    .unwrap();
    let caller = load_private_key(&id, None).unwrap();
    let out = rrssh(
        &[
            "peers",
            &format!("ssh://ada@{listen}"),
            "-i",
            id.to_str().unwrap(),
            "--known-hosts",
            dir.path("known_hosts").to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = find("rrssh connection open").await;
    let span = &v["span"];
    assert_eq!(span["name"], "connection", "{v}");
    assert_eq!(span["carrier"], "ssh", "{v}");
    assert_eq!(span["user"], "ada", "{v}");
    assert_eq!(
        span["fingerprint"],
        rrssh::keys::fingerprint(caller.public_key()),
        "{v}"
    );
    assert!(
        span["remote"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{v}"
    );
    drop(hub);

    // -q: a server that runs and answers says nothing.
    let listen = format!("127.0.0.1:{}", free_port());
    let mut args = vec!["-q", "hub", "--listen", &listen];
    args.extend(files.iter().map(String::as_str));
    let mut quiet = tokio::process::Command::new(BIN)
        .args(&args)
        .env("USER", "ada")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let up = async {
        while tokio::net::TcpStream::connect(&listen).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), up)
        .await
        .unwrap();
    quiet.start_kill().unwrap();
    let out = quiet.wait_with_output().await.unwrap();
    assert_eq!(text(&out.stdout), "");
    assert_eq!(text(&out.stderr), "");
}
