//! Calls between hubs: a request for a service another hub holds goes to that hub's subject
//! (`rrssh.hub.ID`) as one NATS request, and the answer's head comes back as the reply, with
//! the whole body when it fits in one chunk (64 KiB), else its first chunk and the rest as a
//! stream with credit (`stream.rs`). Request bodies travel whole, within the NATS server's
//! `max_payload`. The deadline is the request's timeout, so a vanished hub is `Unavailable`
//! ("no responders") or `Timeout`, never a hang.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::StatusCode;
use http_body::Frame;

use super::stream::{credit_subject, pump, read_chunk, receive, stream_subject};
use super::wire::{AnswerHead, CallHead, decode, encode, header_map, headers_of};
use crate::client::Error;
use crate::hub::Registry;
use crate::proto::headers::TIMEOUT;
use crate::{ApiError, Body, IntoResponse, Request, Response};

/// Room for the head within `max_payload`.
const HEAD_ROOM: usize = 16 * 1024;

fn subject(hub: &str) -> String {
    format!("rrssh.hub.{hub}")
}

/// The most body bytes one message carries.
fn body_limit(client: &async_nats::Client) -> usize {
    client.server_info().max_payload.saturating_sub(HEAD_ROOM)
}

/// A body read whole (with its trailers), or `Err` past `limit` bytes.
async fn collect(body: Body, limit: usize) -> Result<(Vec<u8>, Option<http::HeaderMap>), String> {
    let mut body = body;
    let mut data = Vec::new();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        match frame.into_data() {
            Ok(d) => {
                if data.len() + d.len() > limit {
                    return Err(format!(
                        "a body larger than the cluster carries between hubs ({limit} bytes)"
                    ));
                }
                data.extend_from_slice(&d);
            }
            Err(frame) => trailers = frame.into_trailers().ok(),
        }
    }
    Ok((data, trailers))
}

/// Calls `service` on `hub`.
pub(super) async fn call(
    client: async_nats::Client,
    hub: String,
    service: String,
    req: Request,
    default_timeout: Duration,
    alive: std::sync::Arc<dyn Fn() -> bool + Send + Sync>,
) -> Result<Response, Error> {
    let (parts, body) = req.into_parts();
    let timeout = parts
        .headers
        .get(TIMEOUT)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(default_timeout, Duration::from_millis);
    let limit = body_limit(&client);
    let (data, _) = collect(body, limit).await.map_err(|e| Error::Status {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        body: ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e),
    })?;
    let mut id = [0u8; 12];
    let _ = getrandom::fill(&mut id);
    let call: String = id.iter().map(|b| format!("{b:02x}")).collect();
    // Subscribed before asking, so no chunk of the answer can come first.
    let chunks = client
        .subscribe(stream_subject(&call))
        .await
        .map_err(|e| Error::Unavailable(format!("the cluster connection: {e}")))?;
    let deadline = tokio::time::Instant::now() + timeout;
    let head = CallHead {
        call: call.clone(),
        service: service.clone(),
        method: parts.method.as_str().to_owned(),
        target: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        headers: headers_of(&parts.headers),
    };
    let request = async_nats::Request::new()
        .payload(encode(&head, &data))
        .timeout(Some(timeout));
    let reply = match client.send_request(subject(&hub), request).await {
        Ok(m) => m,
        Err(e) => {
            use async_nats::client::RequestErrorKind as K;
            return Err(match e.kind() {
                K::TimedOut => Error::Timeout,
                K::NoResponders => Error::Unavailable(format!(
                    "hub {hub}, which holds `{service}`, does not answer"
                )),
                _ => Error::Unavailable(format!("calling `{service}` on hub {hub}: {e}")),
            });
        }
    };
    let (head, body): (AnswerHead, Bytes) = decode(&reply.payload).map_err(Error::Unavailable)?;
    if let Some((kind, message)) = head.error {
        return Err(match kind.as_str() {
            "timeout" => Error::Timeout,
            _ => Error::Unavailable(message),
        });
    }
    let body = if head.stream {
        receive(client, call, body, chunks, deadline, alive)
    } else {
        drop(chunks);
        answer_body(body, head.trailers.as_deref())
    };
    let mut res = Response::new(body);
    *res.status_mut() = StatusCode::from_u16(head.status).unwrap_or(StatusCode::BAD_GATEWAY);
    *res.headers_mut() = header_map(&head.headers);
    Ok(res)
}

fn answer_body(data: Bytes, trailers: Option<&[(String, String)]>) -> Body {
    match trailers {
        None => Body::from_bytes(data),
        Some(t) => {
            let frames = vec![
                Ok::<_, std::convert::Infallible>(Frame::data(data)),
                Ok(Frame::trailers(header_map(t))),
            ];
            Body::from_frames(futures_util::stream::iter(frames))
        }
    }
}

/// Answers the calls other hubs send to this one, until the node is gone.
pub(super) async fn serve(
    client: async_nats::Client,
    hub: String,
    registry: Registry,
    node: std::sync::Weak<super::Node>,
) {
    let mut backoff_attempt = 0;
    loop {
        let mut sub = match client.subscribe(subject(&hub)).await {
            Ok(s) => s,
            Err(e) => {
                backoff_attempt += 1;
                tracing::debug!(error = %e, "cluster: cannot subscribe");
                tokio::time::sleep(crate::client::Backoff::default().delay(backoff_attempt)).await;
                continue;
            }
        };
        while let Some(msg) = sub.next().await {
            if node.upgrade().is_none() {
                return;
            }
            let (client, registry) = (client.clone(), registry.clone());
            tokio::spawn(async move {
                let Some(reply) = msg.reply else { return };
                let (answer, rest) = answer(&client, &registry, &msg.payload).await;
                let _ = client.publish(reply, answer).await;
                if let Some(rest) = rest {
                    rest.await;
                }
            });
        }
        if node.upgrade().is_none() {
            return;
        }
    }
}

/// The rest of a streamed answer, sent after the head.
type Rest = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

fn error_answer(kind: &str, message: String) -> (Bytes, Option<Rest>) {
    let head = AnswerHead {
        status: 503,
        headers: Vec::new(),
        stream: false,
        trailers: None,
        error: Some((kind.to_owned(), message)),
    };
    (encode(&head, b""), None)
}

/// Runs one call from another hub on a peer connected here: the reply, and for an answer
/// longer than a chunk, what sends the rest.
async fn answer(
    client: &async_nats::Client,
    registry: &Registry,
    payload: &Bytes,
) -> (Bytes, Option<Rest>) {
    let (head, body): (CallHead, Bytes) = match decode(payload) {
        Ok(x) => x,
        Err(e) => return error_answer("unavailable", e),
    };
    let Some(method) = crate::method::parse(&head.method) else {
        return error_answer("unavailable", format!("bad method `{}`", head.method));
    };
    let Ok(uri) = head.target.parse::<http::Uri>() else {
        return error_answer("unavailable", format!("bad target `{}`", head.target));
    };
    let mut req = Request::new(Body::from_bytes(body));
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = header_map(&head.headers);
    let Some(call) = registry.call_local(&head.service, req) else {
        return error_answer(
            "unavailable",
            format!("`{}` is no longer connected to this hub", head.service),
        );
    };
    let res = match call.await {
        Ok(res) => res,
        Err(Error::Timeout) => return error_answer("timeout", "deadline passed".into()),
        Err(Error::Unavailable(why)) => return error_answer("unavailable", why),
        Err(Error::Status { status, body }) => ApiError::new(status, body.message).into_response(),
        Err(e) => ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let (parts, mut body) = res.into_parts();
    let (data, trailers, end) = match read_chunk(&mut body).await {
        Ok(x) => x,
        Err(e) => return error_answer("unavailable", format!("the answer failed: {e}")),
    };
    let mut rest = None;
    if !end {
        match client.subscribe(credit_subject(&head.call)).await {
            Ok(credits) => {
                rest =
                    Some(Box::pin(pump(client.clone(), head.call.clone(), body, credits)) as Rest);
            }
            Err(e) => return error_answer("unavailable", format!("the cluster connection: {e}")),
        }
    }
    let answer = AnswerHead {
        status: parts.status.as_u16(),
        headers: headers_of(&parts.headers),
        stream: !end,
        trailers: trailers.as_ref().map(headers_of),
        error: None,
    };
    (encode(&answer, &data), rest)
}
