//! Calls between hubs: a request for a service another hub holds goes to that hub's subject
//! (`rrssh.hub.ID`) as one NATS request, and the answer's head comes back as the reply, with
//! the whole body when it fits in one chunk (64 KiB), else its first chunk and the rest as a
//! stream with credit (`stream.rs`). A request body longer than a chunk is uploaded the same
//! way, once the serving hub grants credit. The deadline is the request's timeout, so a
//! vanished hub is `Unavailable` ("no responders") or `Timeout`, never a hang.
//!
//! Every message is sealed (`signing.rs`): a call, signed for the serving hub's subject and its
//! reply subject, is served once, if fresh; an answer counts only if the hub called signed it
//! for that reply subject (anything else arriving there is dropped, and the wait goes on).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::StatusCode;
use http_body::Frame;

use super::signing::{Seals, dropped};
use super::stream::{
    Chunker, credit_subject, pump, receive, stream_subject, upload_credit_subject, upload_subject,
};
use super::wire::{AnswerHead, CallHead, decode, encode, header_map, headers_of};
use crate::client::Error;
use crate::hub::Registry;
use crate::proto::Budget;
use crate::proto::headers::TIMEOUT;
use crate::{ApiError, Body, IntoResponse, Request, Response};

/// The subject a hub answers calls on.
fn subject(hub: &str) -> String {
    format!("rrssh.hub.{hub}")
}

/// Calls `service` on `hub`.
pub(super) async fn call(
    client: async_nats::Client,
    seals: Arc<Seals>,
    hub: String,
    service: String,
    req: Request,
    default_timeout: Duration,
    alive: std::sync::Arc<dyn Fn() -> bool + Send + Sync>,
) -> Result<Response, Error> {
    let (parts, body) = req.into_parts();
    let mut body = Chunker::new(body);
    let timeout = Budget::of_headers(&parts.headers)
        .map_err(|e| Error::Encode(e.to_string()))?
        .map_or(default_timeout, Budget::as_duration);
    // The first chunk of the request body goes with the head; the rest, if any, is uploaded
    // as chunks once the serving hub grants credit.
    let (data, _, end) = body
        .next()
        .await
        .map_err(|e| Error::Unavailable(format!("the request body failed: {e}")))?;
    let call = super::random_id(12);
    // Subscribed before asking, so no chunk of the answer can come first.
    let chunks = client
        .subscribe(stream_subject(&call))
        .await
        .map_err(|e| Error::Unavailable(format!("the cluster connection: {e}")))?;
    let deadline = tokio::time::Instant::now() + timeout;
    let upload = if end {
        None
    } else {
        let credits = client
            .subscribe(upload_credit_subject(&call))
            .await
            .map_err(|e| Error::Unavailable(format!("the cluster connection: {e}")))?;
        let link = (seals.clone(), hub.clone());
        let pump = pump(
            client.clone(),
            link,
            upload_subject(&call),
            body,
            credits,
            true,
        );
        Some(tokio_util::task::AbortOnDropHandle::new(tokio::spawn(pump)))
    };
    let head = CallHead {
        call: call.clone(),
        service: service.clone(),
        method: parts.method.as_str().to_owned(),
        target: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        headers: headers_of(&parts.headers),
        upload: upload.is_some(),
    };
    let reply = ask(
        &client,
        &seals,
        &hub,
        &service,
        &encode(&head, &data),
        deadline,
    )
    .await?;
    // Answered: what the service did not read of the body is not sent.
    drop(upload);
    let (head, body): (AnswerHead, Bytes) = decode(&reply).map_err(Error::Unavailable)?;
    if let Some((kind, message)) = head.error {
        return Err(match kind.as_str() {
            "timeout" => Error::Timeout,
            _ => Error::Unavailable(message),
        });
    }
    let body = if head.stream {
        let link = (seals, hub);
        receive(
            client,
            link,
            credit_subject(&call),
            body,
            chunks,
            deadline,
            alive,
        )
    } else {
        drop(chunks);
        answer_body(body, head.trailers.as_deref())
    };
    let mut res = Response::new(body);
    *res.status_mut() = StatusCode::from_u16(head.status).unwrap_or(StatusCode::BAD_GATEWAY);
    *res.headers_mut() = header_map(&head.headers);
    Ok(res)
}

/// Sends the sealed call `payload` to `hub` and waits until `deadline` for its answer: the
/// first one `hub` signed for this call's reply subject.
async fn ask(
    client: &async_nats::Client,
    seals: &Seals,
    hub: &str,
    service: &str,
    payload: &[u8],
    deadline: tokio::time::Instant,
) -> Result<Bytes, Error> {
    let lost =
        |e: &dyn std::fmt::Display| Error::Unavailable(format!("the cluster connection: {e}"));
    let inbox = client.new_inbox();
    let mut answers = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| lost(&e))?;
    let to = subject(hub);
    let sealed = seals.seal(&to, &inbox, payload);
    client
        .publish_with_reply(to, inbox.clone(), sealed)
        .await
        .map_err(|e| Error::Unavailable(format!("calling `{service}` on hub {hub}: {e}")))?;
    loop {
        let msg = match tokio::time::timeout_at(deadline, answers.next()).await {
            Err(_) => return Err(Error::Timeout),
            Ok(None) => return Err(lost(&"closed")),
            Ok(Some(m)) => m,
        };
        if msg.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            return Err(Error::Unavailable(format!(
                "hub {hub}, which holds `{service}`, does not answer"
            )));
        }
        match seals.open(&inbox, "", &msg.payload, Some(hub), false) {
            Ok(answer) => return Ok(answer.payload),
            Err(why) => dropped("an answer", &inbox, &why),
        }
    }
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
    seals: Arc<Seals>,
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
            let (client, registry, seals) = (client.clone(), registry.clone(), seals.clone());
            tokio::spawn(async move {
                let Some(reply) = msg.reply else { return };
                let subject = msg.subject.as_str();
                let call = match seals.open(subject, &reply, &msg.payload, None, true) {
                    Ok(c) => c,
                    Err(why) => return dropped("a call", subject, &why),
                };
                let (answer, rest) = answer(&client, &registry, &seals, call).await;
                let Some(answer) = answer else { return };
                let answer = seals.seal(&reply, "", &answer);
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

fn error_answer(kind: &str, message: String) -> (Option<Bytes>, Option<Rest>) {
    let head = AnswerHead {
        status: 503,
        headers: Vec::new(),
        stream: false,
        trailers: None,
        error: Some((kind.to_owned(), message)),
    };
    (Some(encode(&head, b"")), None)
}

/// Runs one call from another hub (`call`, checked but for a replay) on a peer connected here:
/// the reply (none to a replay), and for an answer longer than a chunk, what sends the rest.
async fn answer(
    client: &async_nats::Client,
    registry: &Registry,
    seals: &Arc<Seals>,
    call: super::signing::Opened,
) -> (Option<Bytes>, Option<Rest>) {
    let (head, body): (CallHead, Bytes) = match decode(&call.payload) {
        Ok(x) => x,
        Err(e) => return error_answer("unavailable", e),
    };
    if let Err(why) = seals.first_time(&call, &head.call) {
        dropped("a call", &subject(seals.me()), &why);
        return (None, None);
    }
    let caller = call.hub;
    let Some(method) = crate::method::parse(&head.method) else {
        return error_answer("unavailable", format!("bad method `{}`", head.method));
    };
    let Ok(uri) = head.target.parse::<http::Uri>() else {
        return error_answer("unavailable", format!("bad target `{}`", head.target));
    };
    let body = if head.upload {
        let Ok(chunks) = client.subscribe(upload_subject(&head.call)).await else {
            return error_answer("unavailable", "the cluster connection failed".into());
        };
        // Listening now: the first grant lets the calling hub send.
        let credit = upload_credit_subject(&head.call);
        let _ = client
            .publish(credit.clone(), seals.seal(&credit, "", b"0"))
            .await;
        let deadline = tokio::time::Instant::now()
            + head
                .headers
                .iter()
                .find(|(k, _)| k == TIMEOUT)
                .and_then(|(_, v)| Budget::parse(v.as_bytes()).ok())
                .map_or(Duration::from_secs(30), Budget::as_duration);
        receive(
            client.clone(),
            (seals.clone(), caller.clone()),
            credit,
            body,
            chunks,
            deadline,
            std::sync::Arc::new(|| true),
        )
    } else {
        Body::from_bytes(body)
    };
    let mut req = Request::new(body);
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
    let (parts, body) = res.into_parts();
    let mut body = Chunker::new(body);
    let (data, trailers, end) = match body.next().await {
        Ok(x) => x,
        Err(e) => return error_answer("unavailable", format!("the answer failed: {e}")),
    };
    let mut rest = None;
    if !end {
        match client.subscribe(credit_subject(&head.call)).await {
            Ok(credits) => {
                rest = Some(Box::pin(pump(
                    client.clone(),
                    (seals.clone(), caller),
                    stream_subject(&head.call),
                    body,
                    credits,
                    false,
                )) as Rest);
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
    (Some(encode(&answer, &data)), rest)
}
