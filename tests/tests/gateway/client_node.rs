//! A gateway on a client node (`Gateway::to`): local HTTP into one SSH connection, as
//! RestPipe's per-node web server; answered to curl.

use super::*;

fn curl_here() -> bool {
    let found = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("RRSSH_REQUIRE_CURL").is_none(),
            "curl is required (RRSSH_REQUIRE_CURL is set)"
        );
        crate::skipped("curl is not installed (apt-get install curl)");
    }
    found
}

async fn curl(args: &[&str]) -> (String, String) {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (body.to_owned(), code.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_on_a_client_node_answers_curl() {
    if !curl_here() {
        return;
    }
    // The server (forward mode) serves the API; this node is its client.
    let keys = Keys::new();
    let (tx, _cancelled) = mpsc::unbounded_channel();
    let hub = server(&keys, Some(service(tx))).await;
    let node = client(&keys, &hub).connect_persistent();
    node.connected().await;
    let mut tokens = Tokens::new();
    tokens.insert("local", OPS, Grants::parse("call:*").unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(Gateway::to(node.clone()).tokens(tokens).serve(listener));
    let auth = format!("authorization: Bearer {OPS}");

    let (body, code) = curl(&["-H", &auth, &format!("{base}/items/7?color=red")]).await;
    assert_eq!(code, "200", "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"get": 7, "query": {"color": "red"}})
    );
    let (body, code) = curl(&[
        "-H",
        &auth,
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"name":"nut"}"#,
        &format!("{base}/items"),
    ])
    .await;
    assert_eq!(
        (code.as_str(), body.as_str()),
        ("201", r#"{"created":{"name":"nut"}}"#)
    );
    // A stream, as NDJSON, by GET with Accept.
    let (body, code) = curl(&[
        "-N",
        "-H",
        &auth,
        "-H",
        "accept: application/x-ndjson",
        &format!("{base}/count?n=3"),
    ])
    .await;
    assert_eq!(code, "200");
    assert_eq!(body, "{\"i\":0}\n{\"i\":1}\n{\"i\":2}\n");
    // The server's own errors pass through; no token is 401; what a caller claims of itself
    // does not reach the server.
    let (body, code) = curl(&["-X", "DELETE", "-H", &auth, &format!("{base}/items/0")]).await;
    assert_eq!(code, "404", "{body}");
    assert!(body.contains("no item 0"), "{body}");
    let (body, code) = curl(&[&format!("{base}/items/7")]).await;
    assert_eq!(code, "401", "{body}");
    assert!(body.contains("\"status\":401"), "{body}");
    let (body, _) = curl(&[
        "-H",
        &auth,
        "-H",
        "rrssh-caller-user: root",
        &format!("{base}/whoami"),
    ])
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["user"],
        Value::Null
    );

    // The server gone: 503 with the error JSON, at once.
    hub.shutdown(Duration::from_millis(100)).await;
    assert!(eventually(Duration::from_secs(5), || !node.is_connected()).await);
    let (body, code) = curl(&["-H", &auth, &format!("{base}/items/7")]).await;
    assert_eq!(code, "503", "{body}");
    assert!(body.contains("\"status\":503"), "{body}");
}
