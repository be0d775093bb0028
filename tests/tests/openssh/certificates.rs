//! OpenSSH user certificates as sshd(8) takes them: certificates signed by `ssh-keygen -s`,
//! `cert-authority` lines in one `authorized_keys` file read by a real `sshd` and by an rrssh
//! server, and the same `ssh` command against each must have the same outcome.

use rrssh::keys::{PrivateKey, generate_ed25519};

use super::{TempDir, TwoServers, current_user, openssh_available, ponger, write_key};

/// One CA's line, the certificate it signs, and what `ssh` runs with it.
struct Case {
    name: &'static str,
    /// Options before `cert-authority` on the CA's line (`principals="…",` and the like).
    line: String,
    /// `ssh-keygen -s` arguments (`-n`, `-V`, `-O`…); `None`: no certificate, the CA's own key
    /// logs in.
    sign: Option<Vec<String>>,
    args: Vec<String>,
    stdio_forward: Option<String>,
}

fn case(name: &'static str, line: &str, sign: &[&str]) -> Case {
    Case {
        name,
        line: line.to_owned(),
        sign: Some(sign.iter().map(|s| (*s).to_owned()).collect()),
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
    ];
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
        args: vec!["echo".into(), "ran".into()],
        stdio_forward: None,
    });

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
    let servers = TwoServers::start(&dir, &text).await;
    let mut differ = Vec::new();
    for (i, (case, ca)) in cases.iter().zip(&cas).enumerate() {
        let ca_file = write_key(&dir, &format!("ca_{i}"), ca);
        let id = match &case.sign {
            Some(args) => {
                let id = write_key(&dir, &format!("id_{i}"), &generate_ed25519("user"));
                sign(&ca_file, &id, &format!("case-{i}"), args);
                id
            }
            None => ca_file,
        };
        let forward = case.stdio_forward.as_deref();
        let [theirs, ours] = servers
            .both(&dir, &i.to_string(), &id, &case.args, forward)
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
    let server = rrssh::Server::new()
        .host_key(host.clone())
        .trusted_user_ca_keys([ca.public_key().clone()])
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
}
