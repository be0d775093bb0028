//! OpenSSH user certificates as sshd(8) takes them: certificates signed by `ssh-keygen -s`,
//! `cert-authority` lines in one `authorized_keys` file read by a real `sshd` and by an rrssh
//! server, and the same `ssh` command against each must have the same outcome.

use rrssh::keys::{PrivateKey, generate_ed25519};
use rrssh::terminal::Terminal;

use super::{TempDir, TwoServers, current_user, openssh_available, ponger, write_key};

/// One CA's line, the certificate it signs, and what `ssh` runs with it.
struct Case {
    name: &'static str,
    /// Options before `cert-authority` on the CA's line (`principals="…",` and the like).
    line: String,
    /// `ssh-keygen -s` arguments (`-n`, `-V`, `-O`…); `None`: no certificate, the CA's own key
    /// logs in.
    sign: Option<Vec<String>>,
    /// What the revocation list says of this CA's certificates (`ssh-keygen -k` lines such as
    /// `serial: 7`, `id: case-3`), or `key` to revoke the user's key itself.
    revoke: Option<&'static str>,
    args: Vec<String>,
    stdio_forward: Option<String>,
}

fn case(name: &'static str, line: &str, sign: &[&str]) -> Case {
    Case {
        name,
        line: line.to_owned(),
        sign: Some(sign.iter().map(|s| (*s).to_owned()).collect()),
        revoke: None,
        args: vec!["echo".into(), "ran".into()],
        stdio_forward: None,
    }
}

/// `ssh-keygen -s ca -I id args… key.pub`, writing `key-cert.pub` beside `key`.
fn sign(ca: &std::path::Path, key: &std::path::Path, id: &str, args: &[String]) {
    let out = std::process::Command::new("ssh-keygen")
        .arg("-q")
        .arg("-s")
        .arg(ca)
        .args(["-I", id])
        .args(args)
        .arg(key.with_extension("pub"))
        .output()
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen -s {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Adds to the KRL at `krl` (made by the first call): `spec` for the certificates of the CA
/// `ca`, or (`key`) the user's key `id` itself.
fn revoke_in(
    krl: &std::path::Path,
    dir: &TempDir,
    ca: &std::path::Path,
    id: &std::path::Path,
    spec: &str,
) {
    let mut cmd = std::process::Command::new("ssh-keygen");
    cmd.arg("-q").arg("-k");
    if krl.exists() {
        cmd.arg("-u");
    }
    cmd.arg("-f").arg(krl);
    if spec == "key" {
        cmd.arg(id.with_extension("pub"));
    } else {
        let file = dir.path("krl-spec");
        std::fs::write(&file, format!("{spec}\n")).unwrap();
        cmd.arg("-s").arg(ca.with_extension("pub")).arg(file);
    }
    let out = cmd.output().expect("run ssh-keygen -k");
    assert!(
        out.status.success(),
        "ssh-keygen -k {spec}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_mean_what_they_mean_to_sshd() {
    if !openssh_available() {
        return;
    }
    let user = current_user();
    let me = user.as_str();
    let port = ponger().await;
    let mut cases = vec![
        case("a certificate for the user", "", &["-n", me]),
        case("for another principal", "", &["-n", "someone-else"]),
        case(
            "two principals, the user's among them",
            "",
            &["-n", &format!("ops,{me}")],
        ),
        case(
            "principals= on the line, one of the certificate's",
            r#"principals="ops,deploy","#,
            &["-n", "deploy"],
        ),
        case(
            "principals= on the line, none of the certificate's",
            r#"principals="ops","#,
            &["-n", me],
        ),
        case("expired", "", &["-n", me, "-V", "20200101:20200201"]),
        case("not valid yet", "", &["-n", me, "-V", "29990101:29990201"]),
        case(
            "force-command",
            "",
            &[
                "-n",
                me,
                "-O",
                "force-command=echo forced:$SSH_ORIGINAL_COMMAND",
            ],
        ),
        case(
            "force-command and the same command= on the line",
            r#"command="echo forced","#,
            &["-n", me, "-O", "force-command=echo forced"],
        ),
        case(
            "force-command and another command= on the line",
            r#"command="echo theirs","#,
            &["-n", me, "-O", "force-command=echo forced"],
        ),
        case(
            "source-address admitting the client",
            "",
            &["-n", me, "-O", "source-address=127.0.0.0/8"],
        ),
        case(
            "source-address not admitting it",
            "",
            &["-n", me, "-O", "source-address=10.0.0.0/8,192.168.1.1"],
        ),
        case(
            "from= on the line not admitting it",
            r#"from="10.0.0.0/8","#,
            &["-n", me],
        ),
        case("a host certificate", "", &["-h", "-n", me]),
        case("without permit-pty", "", &["-n", me, "-O", "no-pty"]),
    ];
    // With a terminal asked for: granted with permit-pty, a failure without it.
    for (name, sign) in [
        ("a terminal asked for, with permit-pty", &["-n", me][..]),
        (
            "a terminal asked for, without permit-pty",
            &["-n", me, "-O", "no-pty"][..],
        ),
    ] {
        let mut c = case(name, "", sign);
        c.args = ["-tt", "tty >/dev/null && echo ran"]
            .map(str::to_owned)
            .to_vec();
        cases.push(c);
    }
    let mut forward = case("port forwarding, permitted", "", &["-n", me]);
    forward.args.clear();
    forward.stdio_forward = Some(format!("127.0.0.1:{port}"));
    cases.push(forward);
    let mut forward = case(
        "port forwarding, not permitted (-O clear)",
        "",
        &["-n", me, "-O", "clear"],
    );
    forward.args.clear();
    forward.stdio_forward = Some(format!("127.0.0.1:{port}"));
    cases.push(forward);
    cases.push(Case {
        name: "the CA's own key, without a certificate",
        line: String::new(),
        sign: None,
        revoke: None,
        args: vec!["echo".into(), "ran".into()],
        stdio_forward: None,
    });
    for (name, sign_args, revoke) in [
        (
            "revoked by serial (KRL)",
            ["-n", me, "-z", "7"],
            "serial: 7",
        ),
        (
            "another serial of a CA with revocations",
            ["-n", me, "-z", "8"],
            "serial: 7",
        ),
        (
            "revoked by a serial range",
            ["-n", me, "-z", "150"],
            "serial: 100-200",
        ),
        (
            "revoked by key id",
            ["-n", me, "-z", "1"],
            "id: revoked-laptop",
        ),
        (
            "its key revoked, certificate and all",
            ["-n", me, "-z", "1"],
            "key",
        ),
    ] {
        let mut c = case(name, "", &sign_args);
        c.revoke = Some(revoke);
        cases.push(c);
    }

    let dir = TempDir::new("certificates");
    let cas: Vec<PrivateKey> = cases.iter().map(|c| generate_ed25519(c.name)).collect();
    let text: String = cases
        .iter()
        .zip(&cas)
        .map(|(c, ca)| {
            format!(
                "{}cert-authority {}\n",
                c.line,
                ca.public_key().to_openssh().unwrap()
            )
        })
        .collect();
    // Every certificate, and the revocation list sshd and rrssh both read.
    let krl = dir.path("revoked.krl");
    let mut ids = Vec::new();
    for (i, (case, ca)) in cases.iter().zip(&cas).enumerate() {
        let ca_file = write_key(&dir, &format!("ca_{i}"), ca);
        let id = match &case.sign {
            Some(args) => {
                let id = write_key(&dir, &format!("id_{i}"), &generate_ed25519("user"));
                let key_id = if case.revoke == Some("id: revoked-laptop") {
                    "revoked-laptop".to_owned()
                } else {
                    format!("case-{i}")
                };
                sign(&ca_file, &id, &key_id, args);
                id
            }
            None => ca_file.clone(),
        };
        if let Some(revoke) = case.revoke {
            revoke_in(&krl, &dir, &ca_file, &id, revoke);
        }
        ids.push(id);
    }
    let servers = TwoServers::start_with_revocations(&dir, &text, Some(&krl)).await;
    let mut differ = Vec::new();
    for (i, (case, id)) in cases.iter().zip(&ids).enumerate() {
        let forward = case.stdio_forward.as_deref();
        let [theirs, ours] = servers
            .both(&dir, &i.to_string(), id, &case.args, forward)
            .await;
        println!("{:<52} sshd {theirs:?}  rrssh {ours:?}", case.name);
        if theirs != ours {
            differ.push(case.name);
        }
    }
    assert!(differ.is_empty(), "rrssh differs from sshd on: {differ:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rrssh_logs_in_with_a_certificate_and_the_handler_sees_it() {
    use rrssh::client::CallExt;
    use rrssh::{Json, Peer, Router, routing::get};
    if !openssh_available() {
        return;
    }
    let dir = TempDir::new("certificate-login");
    let ca = generate_ed25519("ca");
    let ca_file = write_key(&dir, "ca", &ca);
    let user_key = generate_ed25519("ada");
    let id = write_key(&dir, "id", &user_key);
    let args: Vec<String> = ["-n", "ada,deploy", "-z", "42", "-V", "-5m:+1h"]
        .map(str::to_owned)
        .to_vec();
    sign(&ca_file, &id, "ada-laptop", &args);
    let mut cert_file = id.clone().into_os_string();
    cert_file.push("-cert.pub");
    let cert = rrssh::keys::Certificate::read_file(std::path::Path::new(&cert_file)).unwrap();

    let whoami = Router::new().route(
        "/whoami",
        get(|peer: Peer| async move {
            let c = peer
                .certificate()
                .cloned()
                .expect("logged in with a certificate");
            Json(serde_json::json!({
                "user": peer.user(), "key_id": c.key_id, "serial": c.serial,
                "principals": c.principals, "ca": c.ca,
            }))
        }),
    );
    let host = generate_ed25519("host");
    // Revocations as a text file of public keys, empty for now.
    let revoked = dir.path("revoked_keys");
    std::fs::write(&revoked, "# revoked keys\n").unwrap();
    let server = rrssh::Server::new()
        .host_key(host.clone())
        .trusted_user_ca_keys([ca.public_key().clone()])
        .revoked_keys(rrssh::keys::RevokedKeys::load(&revoked).unwrap())
        .router(whoami)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let login = |user: &str| {
        rrssh::Client::builder(server.local_addr().to_string())
            .user(user)
            .identity(user_key.clone())
            .host_keys(rrssh::keys::HostKeyPolicy::Pinned(
                host.public_key().clone(),
            ))
    };
    // As a principal it names: in, and the handler sees what the certificate says.
    for user in ["ada", "deploy"] {
        let c = login(user)
            .certificate(cert.clone())
            .connect()
            .await
            .unwrap_or_else(|e| panic!("log in as {user} with the certificate: {e}"));
        let v: serde_json::Value = c.get("/whoami").receive().await.unwrap();
        assert_eq!(v["user"], user);
        assert_eq!(v["key_id"], "ada-laptop");
        assert_eq!(v["serial"], 42);
        assert_eq!(v["principals"], serde_json::json!(["ada", "deploy"]));
        assert_eq!(v["ca"], rrssh::keys::fingerprint(ca.public_key()));
        c.close().await;
    }
    // As a name it does not: refused, and told what was tried.
    let err = login("root")
        .certificate(cert.clone())
        .connect()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("certificate ada-laptop"), "{text}");
    // The key alone is no one here.
    assert!(login("ada").connect().await.is_err());
    // Its key revoked while the server runs: the certificate no longer logs in; taken back
    // out of the list, it does again. No restart.
    std::fs::write(
        &revoked,
        format!(
            "# revoked keys\n{}\n",
            user_key.public_key().to_openssh().unwrap()
        ),
    )
    .unwrap();
    assert!(
        login("ada")
            .certificate(cert.clone())
            .connect()
            .await
            .is_err(),
        "a revoked key's certificate is refused"
    );
    std::fs::write(&revoked, "").unwrap();
    login("ada")
        .certificate(cert.clone())
        .connect()
        .await
        .expect("back in once no longer revoked")
        .close()
        .await;
    // A list that cannot be read refuses everyone.
    std::fs::write(&revoked, "not a key\n").unwrap();
    assert!(login("ada").certificate(cert).connect().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_certificates_are_trusted_through_one_authority_by_ssh_and_by_rrssh() {
    if !openssh_available() {
        return;
    }
    let dir = TempDir::new("host-certificates");
    let user = current_user();
    let authority = generate_ed25519("host CA");
    let authority_file = write_key(&dir, "host_ca", &authority);
    // One host key, certified for 127.0.0.1, shown by sshd (HostCertificate) and by rrssh.
    let host = generate_ed25519("host");
    let host_file = write_key(&dir, "sshd_host", &host);
    let host_args: Vec<String> = ["-h", "-n", "127.0.0.1"].map(str::to_owned).to_vec();
    sign(&authority_file, &host_file, "fleet-host-1", &host_args);
    let cert_file = dir.path("sshd_host-cert.pub");
    let cert = rrssh::keys::Certificate::read_file(&cert_file).unwrap();
    let client = generate_ed25519("client");
    let id = write_key(&dir, "id", &client);
    let text = format!("{}\n", client.public_key().to_openssh().unwrap());
    let sshd = super::Sshd::start_with_keys(
        &dir,
        &host,
        &text,
        &format!("HostCertificate {}", cert_file.display()),
    )
    .await;
    let rrssh_server = |cert: rrssh::keys::Certificate| {
        let (host, text, user) = (host.clone(), text.clone(), user.clone());
        async move {
            rrssh::Server::new()
                .host_key(host)
                .host_certificate(cert)
                .authorized_keys(
                    rrssh::keys::AuthorizedKeys::parse(&text, "authorized_keys")
                        .unwrap()
                        .owned_by(user),
                )
                .terminal(Terminal::shell("/bin/sh").for_every_key())
                .bind("127.0.0.1:0")
                .await
                .unwrap()
        }
    };
    let server = rrssh_server(cert.clone()).await;
    // The clients know the authority, and no host key.
    let kh = dir.path("known_hosts");
    std::fs::write(
        &kh,
        format!(
            "@cert-authority 127.0.0.1,[127.0.0.1]:* {}\n",
            authority.public_key().to_openssh().unwrap()
        ),
    )
    .unwrap();
    let echo = vec!["echo".to_owned(), "ran".to_owned()];
    for (name, port) in [("sshd", sshd.port), ("rrssh", server.local_addr().port())] {
        let config = super::ssh_config(&dir, name, port, &user, &id, &kh);
        let got = super::run_ssh(&config, name, &echo, None).await;
        assert_eq!(got, (true, "ran".to_owned()), "ssh to {name}");
    }
    let rrssh_client = |port: u16| {
        rrssh::Client::builder(format!("127.0.0.1:{port}"))
            .user(user.clone())
            .identity(client.clone())
            .host_keys(rrssh::keys::HostKeyPolicy::Strict(kh.clone()))
    };
    rrssh_client(sshd.port)
        .plain()
        .connect()
        .await
        .expect("rrssh's client trusts sshd's host certificate")
        .close()
        .await;
    rrssh_client(server.local_addr().port())
        .connect()
        .await
        .expect("rrssh's client trusts rrssh's host certificate")
        .close()
        .await;

    // A certificate for another name: refused by both clients, and rrssh says why.
    let other_args: Vec<String> = ["-h", "-n", "db.example"].map(str::to_owned).to_vec();
    sign(&authority_file, &host_file, "fleet-host-2", &other_args);
    let wrong = rrssh::keys::Certificate::read_file(&cert_file).unwrap();
    let server = rrssh_server(wrong).await;
    let port = server.local_addr().port();
    let config = super::ssh_config(&dir, "wrong", port, &user, &id, &kh);
    let (ok, _) = super::run_ssh(&config, "wrong", &echo, None).await;
    assert!(!ok, "ssh refuses a certificate for another host");
    let err = rrssh_client(port).connect().await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("names db.example but not 127.0.0.1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rrssh_signs_are_taken_by_a_stock_sshd() {
    if !openssh_available() {
        return;
    }
    let dir = TempDir::new("rrssh-signed");
    let user = current_user();
    let ca = generate_ed25519("fleet CA");
    let client = generate_ed25519("device-17");
    let id = write_key(&dir, "id", &client);
    let mut request = rrssh::keys::CertificateRequest::user(
        "device-17",
        [user.clone()],
        std::time::Duration::from_secs(600),
    );
    request.serial = 17;
    let cert = rrssh::keys::sign_certificate(&ca, client.public_key(), &request).unwrap();
    std::fs::write(dir.path("id-cert.pub"), cert.to_openssh().unwrap() + "\n").unwrap();
    // ssh-keygen reads it as its own.
    let listed = std::process::Command::new("ssh-keygen")
        .arg("-L")
        .arg("-f")
        .arg(dir.path("id-cert.pub"))
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("Key ID: \"device-17\""), "{listed}");
    assert!(listed.contains("Serial: 17"), "{listed}");
    assert!(listed.contains("permit-pty"), "{listed}");
    // A stock sshd and an rrssh server with the CA on a cert-authority line take it alike.
    let text = format!("cert-authority {}\n", ca.public_key().to_openssh().unwrap());
    let servers = TwoServers::start(&dir, &text).await;
    let echo = vec!["echo".to_owned(), "ran".to_owned()];
    let [theirs, ours] = servers.both(&dir, "signed", &id, &echo, None).await;
    assert_eq!(theirs, (true, "ran".to_owned()), "sshd takes it");
    assert_eq!(ours, theirs, "rrssh takes it");
    // One without a principal is not made.
    let none: [String; 0] = [];
    let request =
        rrssh::keys::CertificateRequest::user("x", none, std::time::Duration::from_secs(60));
    let err = rrssh::keys::sign_certificate(&ca, client.public_key(), &request).unwrap_err();
    assert!(err.to_string().contains("at least one principal"), "{err}");
}
