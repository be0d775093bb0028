//! `rrssh call` and `rrssh stream`: one call, or a stream's items as they arrive.

use super::*;

/// `key=value` pairs as a query string.
pub(super) fn query(params: &[String]) -> Result<String, String> {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let mut parts = Vec::new();
    for p in params {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("`{p}` is not key=value"))?;
        parts.push(format!(
            "{}={}",
            utf8_percent_encode(k, NON_ALPHANUMERIC),
            utf8_percent_encode(v, NON_ALPHANUMERIC)
        ));
    }
    Ok(parts.join("&"))
}

pub(super) fn with_query(path: String, params: &[String]) -> Result<String, String> {
    let q = query(params)?;
    Ok(if q.is_empty() {
        path
    } else if path.contains('?') {
        format!("{path}&{q}")
    } else {
        format!("{path}?{q}")
    })
}

pub(super) fn read_json_arg(arg: &str) -> Result<Vec<u8>, String> {
    let text = if arg == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| e.to_string())?;
        s
    } else if let Some(file) = arg.strip_prefix('@') {
        std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))?
    } else {
        arg.to_owned()
    };
    serde_json::from_str::<serde_json::Value>(&text)
        .map_err(|e| format!("--json is not valid JSON: {e}"))?;
    Ok(text.into_bytes())
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn call(
    common: &Common,
    target: &str,
    method: &str,
    path: &str,
    params: &[String],
    json: Option<String>,
    include: bool,
) -> Result<ExitCode, String> {
    let target = Target::parse(target)?;
    let method = rrssh::method::parse(&method.to_ascii_uppercase())
        .ok_or_else(|| format!("`{method}` is not a method"))?;
    let body = json.as_deref().map(read_json_arg).transpose()?;
    let client = connect(common, &target).await?;
    let path = with_query(target.path(path), params)?;
    let mut req = client.request(method, &path);
    if let Some(b) = body {
        req = req
            .header(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            )
            .body(b);
    }
    if let Some(t) = common.timeout {
        req = req.timeout(t);
    }
    let res = match req.send().await {
        Ok(r) => r,
        Err(Error::Status { status, body }) => {
            eprintln!("{}", String::from_utf8_lossy(&body.to_json()));
            return Ok(exit_for(status.as_u16()));
        }
        Err(e) => return Err(e.to_string()),
    };
    let status = res.status();
    if include {
        println!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        for (k, v) in res.headers() {
            println!("{k}: {}", v.to_str().unwrap_or("<binary>"));
        }
        println!();
    }
    let ndjson = res
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/x-ndjson"));
    if status.is_success() && ndjson {
        // A stream answered: each item is printed as it arrives, as `rrssh stream` does.
        let items = rrssh::client::ClientStream::<serde_json::Value>::new(res.into_body());
        let code = print_items(items, None).await?;
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
        eprintln!("{}", String::from_utf8_lossy(&bytes).trim_end());
    }
    client.close().await;
    Ok(exit_for(status.as_u16()))
}

pub(super) async fn stream(
    common: &Common,
    target: &str,
    path: &str,
    params: &[String],
    limit: Option<u64>,
) -> Result<ExitCode, String> {
    let target = Target::parse(target)?;
    let client = connect(common, &target).await?;
    let path = with_query(target.path(path), params)?;
    let mut req = client.stream(&path);
    if let Some(t) = common.timeout {
        req = req.timeout(t);
    }
    let mut items = match req.items::<serde_json::Value>().await {
        Ok(s) => s,
        Err(Error::Status { status, body }) => {
            eprintln!("{}", String::from_utf8_lossy(&body.to_json()));
            return Ok(exit_for(status.as_u16()));
        }
        Err(e) => return Err(e.to_string()),
    };
    let code = print_items(&mut items, limit).await?;
    // Dropping the stream cancels the call on the server.
    drop(items);
    client.close().await;
    Ok(code)
}

/// Prints a stream's items as they arrive, each flushed at once, until its end, `limit` items
/// or Ctrl-C; the exit code says how it ended.
async fn print_items(
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
                writeln!(out, "{item}").map_err(|e| e.to_string())?;
                out.flush().map_err(|e| e.to_string())?;
            }
            Some(Err(Error::Status { status, body })) => {
                eprintln!("{}", String::from_utf8_lossy(&body.to_json()));
                break exit_for(status.as_u16());
            }
            Some(Err(e)) => return Err(e.to_string()),
            None => break ExitCode::SUCCESS,
        }
    };
    Ok(code)
}
