//! The two tasks that move bytes between the carrier and the protocol core, and the handshake.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{HandshakeError, Shared};
use crate::proto::Conn;
use crate::proto::frame::goaway;

/// The most room made for one read from the carrier.
const READ_CHUNK: usize = 64 * 1024;

/// The room an idle connection keeps for its next read (a small call fits).
const READ_MIN: usize = 1024;

/// Small reads in a row after which a connection counts as quiet again.
const QUIET_READS: u32 = 16;

/// How much a peer that does not read may send meanwhile before it is cut off (on top of a
/// frame of the largest size).
const READ_AHEAD: usize = 1024 * 1024 + 4 * READ_CHUNK;

/// How long a closing connection tries to hand its last frames (a final `GOAWAY`) to a carrier
/// that does not take them.
const FINAL_WRITE: Duration = Duration::from_secs(1);

/// Sends our HELLO and waits for the peer's. A refused HELLO (or none in time) is answered with
/// the core's `GOAWAY` before giving up.
pub(super) async fn handshake<R, W>(
    mut conn: Conn,
    mut rd: R,
    mut wr: W,
    timeout: Duration,
) -> Result<(Conn, R, BytesMut, W), HandshakeError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let io_err = |e: std::io::Error| HandshakeError::Io(e.to_string());
    if let Some(hello) = conn.take_output() {
        wr.write_all(&hello).await.map_err(io_err)?;
        wr.flush().await.map_err(io_err)?;
    }
    // A HELLO is small; the read loop sizes the buffer after it.
    let mut rbuf = BytesMut::with_capacity(1024);
    let deadline = tokio::time::sleep(timeout);
    let mut deadline = std::pin::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => {
                conn.handle_hello_timeout();
                final_write(&mut conn, &mut wr).await;
                return Err(HandshakeError::Timeout);
            }
            r = rd.read_buf(&mut rbuf) => match r {
                Ok(0) => return Err(HandshakeError::Io("closed before HELLO".into())),
                Ok(_) => {}
                Err(e) => return Err(io_err(e)),
            },
        }
        conn.handle_input(&mut rbuf);
        if conn.is_open() {
            return Ok((conn, rd, rbuf, wr));
        }
        if let Some(reason) = conn.closed_reason() {
            let reason = reason.to_owned();
            final_write(&mut conn, &mut wr).await;
            return Err(HandshakeError::BadHello(reason));
        }
    }
}

async fn final_write<W: AsyncWrite + Unpin>(conn: &mut Conn, wr: &mut W) {
    if let Some(out) = conn.take_output() {
        let _ = tokio::time::timeout(FINAL_WRITE, async {
            wr.write_all(&out).await?;
            wr.shutdown().await
        })
        .await;
    }
}

/// Reads the carrier into the core while the core wants input; stops reading (and so lets the
/// carrier's own flow control push back) while it does not.
pub(super) async fn read_loop<R>(mut rd: R, mut rbuf: BytesMut, shared: Arc<Shared>)
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let mut closed = shared.closed_tx.subscribe();
    let mut busy = false;
    let mut quiet = 0u32;
    loop {
        let (paused, ready) = {
            let mut st = shared.lock();
            if !st.conn.is_open() {
                return;
            }
            st.conn.handle_input(&mut rbuf);
            shared.dispatch(&mut st);
            if st.conn.pending_output() > 0 {
                shared.writer_wake.notify_one();
            }
            if !st.conn.is_open() {
                // Closing moved the calls not yet started into the outbox: they are dropped
                // once the lock is released.
                return;
            }
            let ready = std::mem::take(&mut st.ready);
            let paused = if st.conn.wants_input() {
                false
            } else if st.conn.is_output_blocked() {
                // The peer does not read what it asks for. Reading on (up to a bound) keeps
                // the carrier's own loop running: an SSH session whose channel is not read
                // stops reading its socket, and would not even see the peer leave.
                if rbuf.len() > READ_AHEAD {
                    let msg = format!(
                        "the peer sent over {READ_AHEAD} bytes while not reading the answers to what it sent"
                    );
                    crate::logging::limited("read-ahead", || {
                        tracing::warn!("{msg}; closing");
                    });
                    st.conn.close(goaway::NOT_READING, &msg);
                    shared.dispatch(&mut st);
                    drop(st);
                    shared.writer_wake.notify_one();
                    return;
                }
                false
            } else {
                // A peer that predates the connection window, over it: only the carrier's flow
                // control holds it back.
                true
            };
            (paused, ready)
        };
        super::serve::run_ready(&shared, ready);
        if paused {
            tokio::select! {
                _ = shared.reader_wake.notified() => {}
                _ = closed.wait_for(Option::is_some) => return,
            }
            continue;
        }
        // Room for what comes next: a connection whose last read filled its room gets the
        // room of a large read, an idle one keeps a small buffer.
        let want = if busy { READ_CHUNK } else { READ_MIN };
        if quiet >= QUIET_READS && rbuf.is_empty() && rbuf.capacity() > READ_CHUNK / 2 {
            // Quiet again after a burst: the large buffer goes back to the allocator, so a
            // connection that once moved a lot of data costs an idle one's memory. (Only after
            // a run of small reads: a loaded connection swapping buffers would pay for it.)
            rbuf = BytesMut::with_capacity(READ_MIN);
        }
        if rbuf.capacity() - rbuf.len() < want {
            rbuf.reserve(want);
        }
        let room = rbuf.capacity() - rbuf.len();
        // Reading is cancel-safe: woken (the output drained), the frames already read are
        // handled first.
        let read = tokio::select! {
            r = rd.read_buf(&mut rbuf) => r,
            _ = shared.reader_wake.notified() => continue,
            _ = closed.wait_for(Option::is_some) => return,
        };
        let eof = match read {
            Ok(0) => None,
            Ok(n) => {
                busy = n == room;
                quiet = if n < READ_MIN {
                    quiet.saturating_add(1)
                } else {
                    0
                };
                continue;
            }
            Err(e) => Some(e.to_string()),
        };
        let mut st = shared.lock();
        st.conn.handle_eof(eof.as_deref());
        shared.dispatch(&mut st);
        return;
    }
}

/// Writes what the core framed, in as few writes as it comes. A write the carrier does not
/// take is abandoned when the connection closes, so a dead carrier holds nothing.
pub(super) async fn write_loop<W>(mut wr: W, shared: &Arc<Shared>)
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut closed = shared.closed_tx.subscribe();
    loop {
        let (out, open) = {
            let mut st = shared.lock();
            // Input waited for this output to be taken: the reader goes on.
            if st.conn.is_output_blocked() {
                shared.reader_wake.notify_one();
            }
            let out = st.conn.take_output();
            if st.conn.can_send_data() {
                super::call::wake_blocked(&mut st);
            }
            (out, st.conn.is_open())
        };
        match out {
            Some(out) if open => {
                let mut at = 0;
                while at < out.len() {
                    let written = tokio::select! {
                        r = wr.write(&out[at..]) => Some(r),
                        _ = closed.wait_for(Option::is_some) => None,
                    };
                    let Some(written) = written else {
                        // Closed mid-write: what was started goes out whole, then the last
                        // frames (the GOAWAY that says why), within a short time.
                        let last = shared.lock().conn.take_output();
                        let _ = tokio::time::timeout(FINAL_WRITE, async {
                            wr.write_all(&out[at..]).await?;
                            if let Some(last) = last {
                                wr.write_all(&last).await?;
                            }
                            wr.shutdown().await
                        })
                        .await;
                        return;
                    };
                    match written {
                        Ok(0) => {
                            shared.close_quietly("write failed: the carrier takes no more");
                            return;
                        }
                        Ok(n) => at += n,
                        Err(e) => {
                            shared.close_quietly(&format!("write failed: {e}"));
                            return;
                        }
                    }
                }
            }
            Some(out) => {
                // Closed: the last frames (a GOAWAY) get a short chance, then the carrier ends.
                let _ = tokio::time::timeout(FINAL_WRITE, async {
                    wr.write_all(&out).await?;
                    wr.shutdown().await
                })
                .await;
                return;
            }
            None if !open => {
                let _ = tokio::time::timeout(FINAL_WRITE, wr.shutdown()).await;
                return;
            }
            None => {
                if let Err(e) = wr.flush().await {
                    shared.close_quietly(&format!("flush failed: {e}"));
                    return;
                }
                tokio::select! {
                    _ = shared.writer_wake.notified() => {}
                    _ = closed.wait_for(Option::is_some) => {}
                }
            }
        }
    }
}
