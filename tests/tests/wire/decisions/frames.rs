//! Decisions on frames, header blocks and the HELLO.

use http_body_util::BodyExt;
use rrssh::client::{CallExt, Error};
use rrssh::connection::ConnectionConfig;
use rrssh::proto::Role;

use super::super::raw::{HELLO, Raw, frame, header_block, request, request_with, response};
use super::{app, goaway_for, hello_with, served, served_after, still_answers, with_hello};

#[tokio::test]
async fn a_frame_length_under_6_is_goaway_1() {
    for len in [0u8, 3, 5] {
        let (code, msg) = goaway_for(with_hello(HELLO, &[vec![0, 0, 0, len, 9, 0]])).await;
        assert_eq!(code, 1, "{msg}");
    }
}

#[tokio::test]
async fn hello_capabilities_unknown_ignored_malformed_refused() {
    let mut raw = served().await;
    assert_eq!(raw.hello["caps"], serde_json::json!(["skip"]));
    still_answers(&mut raw, 1).await;
    let known = hello_with(r#""caps":["skip","from-the-future","x"]"#);
    let mut raw = served_after(&known).await;
    still_answers(&mut raw, 1).await;
    let many = serde_json::to_string(&vec!["c"; 65]).unwrap();
    let long = format!("[\"{}\"]", "c".repeat(65));
    for caps in [many.as_str(), &long, r#"[""]"#, r#""skip""#, "[1]"] {
        let (code, msg) = goaway_for(hello_with(&format!(r#""caps":{caps}"#))).await;
        assert_eq!(code, 1, "{caps}: {msg}");
    }
}

#[tokio::test]
async fn unknown_frame_types_are_skipped_when_flagged_else_goaway_1() {
    let mut raw = served().await;
    raw.send(&frame(0x7f, 0x80, 0, b"extension")).await;
    raw.send(&frame(0x42, 0x81, 7, &[0; 1000])).await;
    still_answers(&mut raw, 1).await;
    let cases = [
        with_hello(HELLO, &[frame(0x7f, 0, 0, b"")]),
        with_hello(HELLO, &[frame(0x7f, 0x40, 0, b"")]),
        with_hello(HELLO, &[frame(9, 0x80 | 0x02, 0, b"")]),
        // Before the HELLO, a frame of an unknown type is refused, SKIP or not.
        [frame(0x7f, 0x80, 0, b""), frame(1, 0, 0, HELLO.as_bytes())].concat(),
    ];
    for bytes in cases {
        let (code, msg) = goaway_for(bytes).await;
        assert_eq!(code, 1, "{msg}");
    }
}

#[tokio::test]
async fn a_v1_0_peer_without_caps_or_conn_window_still_works() {
    let v10 = r#"{"version":1,"max_frame":1048576,"window":1048576,"max_calls":8}"#;
    let mut config = ConnectionConfig::new(Role::Acceptor).serve(app());
    config.limits.connection_window = 64 * 1024;
    let mut raw = Raw::start(config, &frame(1, 0, 0, v10.as_bytes())).await;
    // 200 KB on one call: within the call's window; a 1.0 peer is held to no connection window.
    raw.send(&request(1, "POST", "/upload", false)).await;
    for i in 0..10 {
        raw.send(&frame(4, u8::from(i == 9), 1, &[5; 20_000])).await;
    }
    let mut frames = Vec::new();
    loop {
        let f = raw.frame().await.unwrap();
        let done = f.call == 1 && f.ty == 4;
        frames.push(f);
        if done {
            break;
        }
    }
    assert_eq!(frames.last().unwrap().payload, b"200000");
    assert!(
        !frames.iter().any(|f| f.ty == 7 && f.call == 0),
        "no connection WINDOW: {frames:?}"
    );
    assert!(!frames.iter().any(|f| f.flags & 0x80 != 0), "no SKIP frame");
    still_answers(&mut raw, 3).await;
}

#[tokio::test]
async fn header_names_of_any_case_are_read_in_lower_case() {
    let mut raw = served().await;
    raw.send(&request_with(
        1,
        "GET",
        "/header",
        &[(b"X-Thing", b"Mixed Case")],
        true,
    ))
    .await;
    assert_eq!(raw.on_call(1).await.status(), 200);
    assert_eq!(raw.on_call(1).await.payload, b"Mixed Case");
}

#[tokio::test]
async fn bad_header_names_and_control_bytes_are_refused() {
    let mut raw = served().await;
    let bad: [(&[u8], &[u8]); 4] = [
        (b"bad name", b"v"),
        (b"", b"v"),
        (b"x-ctl", b"a\x01b"),
        (b"x-del", b"a\x7fb"),
    ];
    for (i, h) in bad.iter().enumerate() {
        let call = 1 + 2 * i as u32;
        raw.send(&request_with(call, "GET", "/name", &[*h], true))
            .await;
        let f = raw.on_call(call).await;
        assert_eq!((f.ty, f.status()), (8, 400), "{:?}: {}", h.0, f.message());
    }
    still_answers(&mut raw, 21).await;
    // In an answer's head or trailers they break the protocol: the Rust caller says GOAWAY 1.
    for answer in [
        response(1, 200, &[(b"bad name", b"v")], true),
        [
            response(1, 200, &[], false),
            frame(5, 1, 1, &header_block(&[(b"x", b"\x01")])),
        ]
        .concat(),
    ] {
        let raw_hello = frame(1, 0, 0, HELLO.as_bytes());
        let mut raw = Raw::start(ConnectionConfig::new(Role::Initiator), &raw_hello).await;
        let conn = raw.conn.clone().unwrap();
        let call = tokio::spawn(async move {
            let res = conn.get("/x").send().await?;
            res.into_body()
                .collect()
                .await
                .map_err(|e| Error::Unavailable(e.to_string()))?;
            Ok::<_, Error>(())
        });
        assert_eq!(raw.frame().await.unwrap().ty, 2);
        raw.send(&answer).await;
        assert_eq!(raw.goaway().await.0, 1);
        assert!(call.await.unwrap().is_err());
    }
}

#[tokio::test]
async fn the_end_flag_on_connection_frames_is_ignored() {
    let bytes = [
        frame(1, 1, 0, HELLO.as_bytes()),
        frame(9, 1, 0, b"ping"),
        frame(7, 1, 0, &1000u32.to_be_bytes()),
        frame(0x0a, 1, 0, b"pong"),
    ]
    .concat();
    let mut raw = served_after(&bytes).await;
    let pong = raw.frame().await.unwrap();
    assert_eq!((pong.ty, pong.payload.as_slice()), (0x0a, &b"ping"[..]));
    still_answers(&mut raw, 1).await;
}

#[tokio::test]
async fn a_conn_window_that_is_not_a_number_is_goaway_1() {
    for w in [r#""x""#, "null", "-1", "1.5", "4294967296", "[]"] {
        let (code, msg) = goaway_for(hello_with(&format!(r#""conn_window":{w}"#))).await;
        assert_eq!(code, 1, "conn_window {w}: {msg}");
    }
}

#[tokio::test]
async fn service_names_are_1_to_64_name_characters() {
    let hello = |service: &str| hello_with(&format!(r#""service":{}"#, serde_json::json!(service)));
    let ok = Raw::start(
        ConnectionConfig::new(Role::Acceptor),
        &hello(&"a.b_c-d:9".repeat(7)[..63]),
    )
    .await;
    assert!(ok.conn.is_some());
    for bad in ["", &"a".repeat(65), "has space", "slash/y", "é"] {
        let (code, msg) = goaway_for(hello(bad)).await;
        assert_eq!(code, 1, "{bad:?}: {msg}");
    }
}

#[tokio::test]
async fn pongs_unsolicited_are_ignored_oversized_are_goaway_1() {
    let mut raw = served().await;
    raw.send(&frame(0x0a, 0, 0, b"unasked")).await;
    raw.send(&frame(0x0a, 0, 0, &[0; 64])).await;
    still_answers(&mut raw, 1).await;
    let (code, msg) = goaway_for(with_hello(HELLO, &[frame(0x0a, 0, 0, &[0; 65])])).await;
    assert_eq!(code, 1);
    assert!(msg.contains("PONG"), "{msg}");
}

/// What a receiver does not refuse: unknown HELLO fields, a tab in a value, a GOAWAY code it
/// does not know, END on GOAWAY and CANCEL, an END frame without the flag, a repeated budget.
#[tokio::test]
async fn what_a_receiver_takes_without_complaint() {
    let first = hello_with(r#""future":{"x":[1,2]},"conn_window":1048576"#);
    let mut raw = served_after(&first).await;
    still_answers(&mut raw, 1).await;
    raw.send(&request_with(
        3,
        "GET",
        "/header",
        &[(b"x-thing", b"a\tb")],
        true,
    ))
    .await;
    assert_eq!(raw.on_call(3).await.status(), 200);
    assert_eq!(raw.on_call(3).await.payload, b"a\tb");
    // The END frame ends the body whether its flag is set or not.
    raw.send(&request(5, "POST", "/upload", false)).await;
    raw.send(&frame(4, 0, 5, b"four")).await;
    raw.send(&frame(5, 0, 5, &header_block(&[]))).await;
    assert_eq!(raw.on_call(5).await.status(), 200);
    assert_eq!(raw.on_call(5).await.payload, b"4");
    // Of several budgets the first counts.
    let two = [
        (&b"rrssh-timeout"[..], &b"0050"[..]),
        (b"rrssh-timeout", b"0"),
    ];
    raw.send(&request_with(7, "GET", "/left", &two, true)).await;
    assert_eq!(raw.on_call(7).await.status(), 200);
    let left: u64 = String::from_utf8_lossy(&raw.on_call(7).await.payload)
        .parse()
        .unwrap();
    assert!(left <= 50, "{left}");
    // END on CANCEL and on GOAWAY means nothing; a GOAWAY code it does not know is no fault.
    raw.send(&request(9, "GET", "/slow", true)).await;
    raw.send(&frame(6, 1, 9, b"")).await;
    let mut unknown = super::super::raw::goaway(99, "a code from the future");
    unknown[5] = 1;
    raw.send(&unknown).await;
    still_answers(&mut raw, 11).await;
    let conn = raw.conn.clone().unwrap();
    assert!(conn.closed_reason().is_none(), "still open");
}
