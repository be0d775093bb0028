//! `rrssh call` and `rrssh stream`: one call, or a stream's items as they arrive.

mod items;

use super::*;

/// How a call's request is given, besides its target, method and path.
pub(crate) struct Given {
    /// Request items (see `items`).
    pub(crate) items: Vec<String>,
    /// `-H 'Name: value'`.
    pub(crate) headers: Vec<String>,
    /// `--json BODY`: a JSON body, checked before it is sent.
    pub(crate) json: Option<String>,
    /// `-d BODY`: a body as it is.
    pub(crate) data: Option<String>,
}

/// How the answer is printed.
pub(crate) struct Shown {
    /// `-I`: the status and headers first.
    pub(crate) include: bool,
    /// `--raw`: the body as received, for an error too (on stdout).
    pub(crate) raw: bool,
}

/// What the items and options make of a request: its path with the query, its headers and
/// its body.
struct Prepared {
    path: String,
    headers: http::HeaderMap,
    body: Option<Vec<u8>>,
}

impl Prepared {
    fn new(method: &http::Method, path: &str, given: &Given) -> Result<Self, String> {
        prepare(method, path, given)
    }

    /// The request, on `client`.
    fn request<'a>(
        self,
        client: &'a Client,
        method: http::Method,
        timeout: Option<Duration>,
    ) -> rrssh::client::RequestBuilder<'a, Client> {
        let mut req = client.request(method, &self.path);
        for (name, value) in &self.headers {
            req = req.header(name.clone(), value.clone());
        }
        if let Some(b) = self.body {
            req = req.body(b);
        }
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        req
    }
}

fn prepare(method: &http::Method, path: &str, given: &Given) -> Result<Prepared, String> {
    let parsed = items::parse(&given.items, &given.headers)?;
    let takes_body = !matches!(
        method.as_str(),
        "GET" | "HEAD" | "DELETE" | "OPTIONS" | "STREAM"
    );
    if !parsed.fields.is_empty() && !takes_body {
        let first = parsed.fields.keys().next().map_or("", String::as_str);
        return Err(format!(
            "{method} sends no body, so `{first}=…` has nowhere to go: write `{first}==…` for \
             a query parameter"
        ));
    }
    let given_bodies = [
        (!parsed.fields.is_empty()).then_some("key=value items"),
        given.json.as_ref().map(|_| "--json"),
        given.data.as_ref().map(|_| "-d"),
    ];
    let bodies: Vec<&str> = given_bodies.into_iter().flatten().collect();
    if bodies.len() > 1 {
        return Err(format!(
            "give one body: {} were given together",
            bodies.join(" and ")
        ));
    }
    let json = http::HeaderValue::from_static("application/json");
    let (body, content_type) = if !parsed.fields.is_empty() {
        let b = serde_json::to_vec(&serde_json::Value::Object(parsed.fields))
            .map_err(|e| e.to_string())?;
        (Some(b), Some(json))
    } else if let Some(arg) = &given.json {
        let b = items::read_body(arg, "--json")?;
        serde_json::from_slice::<serde_json::Value>(&b)
            .map_err(|e| format!("--json is not valid JSON: {e}"))?;
        (Some(b), Some(json))
    } else if let Some(arg) = &given.data {
        // As sent; its type is -H Content-Type's, else JSON if it is JSON, else bytes.
        let b = items::read_body(arg, "-d")?;
        let guess = if serde_json::from_slice::<serde::de::IgnoredAny>(&b).is_ok() {
            json
        } else {
            http::HeaderValue::from_static("application/octet-stream")
        };
        (Some(b), Some(guess))
    } else {
        (None, None)
    };
    let mut headers = parsed.headers;
    if let Some(ct) = content_type
        && !headers.contains_key(http::header::CONTENT_TYPE)
    {
        headers.insert(http::header::CONTENT_TYPE, ct);
    }
    Ok(Prepared {
        path: items::with_query(path.to_owned(), &parsed.query),
        headers,
        body,
    })
}

pub(super) async fn call(
    common: &Common,
    target: &str,
    method: &str,
    path: &str,
    given: &Given,
    shown: &Shown,
) -> Result<ExitCode, String> {
    let target = Target::parse(target)?;
    let method = rrssh::method::parse(&method.to_ascii_uppercase())
        .ok_or_else(|| format!("`{method}` is not a method"))?;
    // Bad items and bodies are refused before anything is dialed.
    let prepared = Prepared::new(&method, &target.path(path), given)?;
    let client = connect(common, &target).await?;
    let res = match prepared
        .request(&client, method, common.timeout)
        .send()
        .await
    {
        Ok(r) => r,
        Err(Error::Status { status, body }) => {
            error_line(&target, status.as_u16(), &body.to_json(), shown.raw);
            return Ok(exit_for(status.as_u16()));
        }
        Err(e) => return Err(e.to_string()),
    };
    let status = res.status();
    if shown.include {
        say!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        for (k, v) in res.headers() {
            say!("{k}: {}", v.to_str().unwrap_or("<binary>"));
        }
        say!();
    }
    let content_type = res
        .headers()
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    if status.is_success() && content_type.starts_with(b"application/x-ndjson") && !shown.raw {
        // A stream answered: each item is printed as it arrives, as `rrssh stream` does.
        let items = rrssh::client::ClientStream::<serde_json::Value>::new(res.into_body());
        let code = print_items(&target, items, None).await?;
        client.close().await;
        return Ok(code);
    }
    if status.is_success() && (!content_type.starts_with(b"application/json") || shown.raw) {
        // Bytes: written as they come (a download, a log, a stream read raw).
        let code = copy_body(res.into_body()).await?;
        client.close().await;
        return Ok(code);
    }
    let bytes = res
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if status.is_success() {
        print_body(&bytes, common.color).map_err(|e| e.to_string())?;
    } else {
        error_line(&target, status.as_u16(), &bytes, shown.raw);
    }
    client.close().await;
    Ok(exit_for(status.as_u16()))
}

/// Writes a body to stdout frame by frame, each flushed as it arrives, until its end or
/// Ctrl-C.
async fn copy_body(mut body: rrssh::Body) -> Result<ExitCode, String> {
    use tokio::io::AsyncWriteExt;
    let mut out = tokio::io::stdout();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let frame = tokio::select! {
            f = body.frame() => f,
            _ = &mut ctrl_c => return Ok(ExitCode::from(130)),
        };
        match frame {
            None => return Ok(ExitCode::SUCCESS),
            Some(Err(e)) => return Err(format!("the answer was cut: {e}")),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    // A closed stdout (`| head`) ends the call.
                    if out.write_all(&data).await.is_err() || out.flush().await.is_err() {
                        return Ok(ExitCode::SUCCESS);
                    }
                }
            }
        }
    }
}

/// A server's error as one line on stderr: `rrssh: 404 Not Found: no route for GET /x`, with
/// the detail after it; with `raw`, the body as received also goes to stdout.
fn error_line(target: &Target, status: u16, body: &[u8], raw: bool) {
    if raw {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(body);
        let _ = out.flush();
    }
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let parsed = serde_json::from_slice::<serde_json::Value>(body).ok();
    let error = parsed.as_ref().map(|v| &v["error"]);
    let message = match error.and_then(|e| e["message"].as_str()) {
        Some(m) => m.to_owned(),
        None => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            text.chars().take(300).collect()
        }
    };
    let mut line = format!("rrssh: {status} {reason}");
    if !message.is_empty() {
        line.push_str(": ");
        line.push_str(&message);
    }
    if let Some(detail) = error.map(|e| &e["detail"]).filter(|d| !d.is_null()) {
        line.push_str(&format!(" (detail: {detail})"));
    }
    // A server without a relay has no route under the peers' path: it is not a hub.
    if status == 404
        && message.starts_with("no route for ")
        && let Some(peer) = &target.peer
    {
        line.push_str(&format!(
            "\nrrssh: {} is not a hub: it relays no calls to peers such as `{peer}` (a hub is \
             `rrssh hub`, or `rrssh serve --relay`)",
            target.host
        ));
    }
    eprintln!("{line}");
}

pub(super) async fn stream(
    common: &Common,
    target: &str,
    path: &str,
    given: &Given,
    limit: Option<u64>,
) -> Result<ExitCode, String> {
    let target = Target::parse(target)?;
    let method = rrssh::method::STREAM.clone();
    let prepared = Prepared::new(&method, &target.path(path), given)?;
    let client = connect(common, &target).await?;
    let req = prepared.request(&client, method, common.timeout);
    let mut items = match req.items::<serde_json::Value>().await {
        Ok(s) => s,
        Err(Error::Status { status, body }) => {
            error_line(&target, status.as_u16(), &body.to_json(), false);
            return Ok(exit_for(status.as_u16()));
        }
        Err(e) => return Err(e.to_string()),
    };
    let code = print_items(&target, &mut items, limit).await?;
    // Dropping the stream cancels the call on the server.
    drop(items);
    client.close().await;
    Ok(code)
}

/// Prints a stream's items as they arrive, each flushed at once, until its end, `limit` items
/// or Ctrl-C; the exit code says how it ended.
async fn print_items(
    target: &Target,
    mut items: impl futures_util::Stream<Item = Result<serde_json::Value, Error>> + Unpin,
    limit: Option<u64>,
) -> Result<ExitCode, String> {
    use std::io::Write;
    let mut seen = 0u64;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let code = loop {
        if limit.is_some_and(|l| seen >= l) {
            break ExitCode::SUCCESS;
        }
        let next = tokio::select! {
            n = items.next() => n,
            _ = &mut ctrl_c => break ExitCode::from(130),
        };
        match next {
            Some(Ok(item)) => {
                seen += 1;
                let mut out = std::io::stdout().lock();
                if writeln!(out, "{item}").and_then(|()| out.flush()).is_err() {
                    // A closed stdout (`| head`) ends the stream.
                    break ExitCode::SUCCESS;
                }
            }
            Some(Err(Error::Status { status, body })) => {
                error_line(target, status.as_u16(), &body.to_json(), false);
                break exit_for(status.as_u16());
            }
            Some(Err(e)) => return Err(e.to_string()),
            None => break ExitCode::SUCCESS,
        }
    };
    Ok(code)
}
