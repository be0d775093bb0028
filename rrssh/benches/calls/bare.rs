//! The bare russh baseline: an echo server and client on one channel, bulk downloads.

#![allow(clippy::unwrap_used)]

use crate::*;

// ---------------------------------------------------------------- bare russh baseline

#[derive(Clone)]
pub(crate) struct EchoServer;

impl russh::server::Handler for EchoServer {
    type Error = russh::Error;
    async fn auth_publickey(
        &mut self,
        _: &str,
        _: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(Auth::Accept)
    }
    async fn channel_open_session(
        &mut self,
        ch: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        // A task drains the channel and echoes everything back (an undrained channel stalls the session).
        tokio::spawn(async move {
            let (mut rd, mut wr) = tokio::io::split(ch.into_stream());
            // A first word of u32::MAX asks for a bulk download of the following u64 byte count.
            let mut head = [0u8; 4];
            if rd.read_exact(&mut head).await.is_err() {
                return;
            }
            if head == [0xff; 4] {
                let Ok(total) = rd.read_u64().await else {
                    return;
                };
                let chunk = vec![7u8; 64 * 1024];
                let mut sent = 0u64;
                while sent < total {
                    if wr.write_all(&chunk).await.is_err() {
                        return;
                    }
                    sent += chunk.len() as u64;
                }
                let _ = wr.flush().await;
                // Keep the channel open until the client is done reading.
                let _ = rd.read(&mut head).await;
                return;
            }
            if wr.write_all(&head).await.is_err() {
                return;
            }
            let _ = tokio::io::copy(&mut rd, &mut wr).await;
        });
        Ok(())
    }
}

pub(crate) struct BareClient;
impl russh::client::Handler for BareClient {
    type Error = russh::Error;
    async fn check_server_key(
        &mut self,
        _: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

pub(crate) fn bench_preferred() -> russh::Preferred {
    russh::Preferred {
        cipher: std::borrow::Cow::Owned(vec![russh::cipher::AES_256_GCM]),
        ..Default::default()
    }
}

pub(crate) fn russh_server_config(host: &PrivateKey) -> Arc<russh::server::Config> {
    Arc::new(russh::server::Config {
        keys: vec![host.clone()],
        nodelay: true,
        preferred: bench_preferred(),
        auth_rejection_time: Duration::ZERO,
        auth_rejection_time_initial: Some(Duration::ZERO),
        ..Default::default()
    })
}

pub(crate) fn russh_client_config() -> Arc<russh::client::Config> {
    Arc::new(russh::client::Config {
        nodelay: true,
        preferred: bench_preferred(),
        ..Default::default()
    })
}

pub(crate) async fn bare_server(host: &PrivateKey) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = russh_server_config(host);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let config = config.clone();
            tokio::spawn(async move {
                if let Ok(s) = russh::server::run_stream(config, tcp, EchoServer).await {
                    let _ = s.await;
                }
            });
        }
    });
    addr
}

pub(crate) async fn bare_connect(
    addr: std::net::SocketAddr,
    key: &PrivateKey,
) -> russh::client::Handle<BareClient> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let mut h = russh::client::connect_stream(russh_client_config(), tcp, BareClient)
        .await
        .unwrap();
    let ok = h
        .authenticate_publickey(
            "bench",
            PrivateKeyWithHashAlg::new(Arc::new(key.clone()), None),
        )
        .await
        .unwrap();
    assert!(ok.success());
    h
}

/// Length-prefixed echo over one channel: `conc` messages in flight (pipelined).
pub(crate) async fn bare_echo(
    addr: std::net::SocketAddr,
    key: &PrivateKey,
    conc: usize,
    size: usize,
    dur: Duration,
) -> Figure {
    let h = bare_connect(addr, key).await;
    let ch = h.channel_open_session().await.unwrap();
    let (mut rd, mut wr) = tokio::io::split(ch.into_stream());
    let mut msg = (size as u32).to_be_bytes().to_vec();
    msg.extend(std::iter::repeat_n(b'x', size));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(conc));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let start = Instant::now();
    let deadline = start + dur;
    let writer = {
        let (msg, in_flight) = (msg.clone(), in_flight.clone());
        tokio::spawn(async move {
            while Instant::now() < deadline {
                in_flight.acquire().await.unwrap().forget();
                tx.send(Instant::now()).unwrap();
                wr.write_all(&msg).await.unwrap();
            }
            wr
        })
    };
    let mut lat = Vec::new();
    let mut buf = vec![0u8; msg.len()];
    while let Some(t0) = rx.recv().await {
        rd.read_exact(&mut buf).await.unwrap();
        lat.push(t0.elapsed());
        in_flight.add_permits(1);
    }
    let _wr = writer.await;
    summarize(lat, start.elapsed())
}

/// Bulk throughput: `channels` channels on one connection, each downloading `each` bytes.
pub(crate) async fn bare_bulk(
    addr: std::net::SocketAddr,
    key: &PrivateKey,
    each: usize,
    channels: usize,
) -> Figure {
    let h = Arc::new(bare_connect(addr, key).await);
    let start = Instant::now();
    let tasks: Vec<_> = (0..channels)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move {
                let ch = h.channel_open_session().await.unwrap();
                let (mut rd, mut wr) = tokio::io::split(ch.into_stream());
                wr.write_all(&[0xff; 4]).await.unwrap();
                wr.write_u64(each as u64).await.unwrap();
                let mut got = 0;
                let mut buf = vec![0u8; 256 * 1024];
                while got < each {
                    let n = rd.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
                got
            })
        })
        .collect();
    throughput(tasks, start).await
}
