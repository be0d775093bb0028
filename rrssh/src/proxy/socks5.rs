//! A SOCKS5 proxy's tunnel (RFC 1928), with user name and password (RFC 1929), by
//! `tokio-socks`.

use tokio::net::TcpStream;
use tokio_socks::tcp::Socks5Stream;

pub(super) async fn open(
    tcp: TcpStream,
    host: &str,
    port: u16,
    remote_dns: bool,
    auth: Option<&(String, String)>,
) -> Result<Socks5Stream<TcpStream>, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let target: tokio_socks::TargetAddr<'_> = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => tokio_socks::TargetAddr::Ip((ip, port).into()),
        Err(_) if remote_dns => tokio_socks::TargetAddr::Domain(host.into(), port),
        Err(_) => {
            let addr = tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| format!("cannot resolve {host}: {e}"))?
                .next()
                .ok_or_else(|| format!("{host} has no address"))?;
            tokio_socks::TargetAddr::Ip(addr)
        }
    };
    let opened = match auth {
        Some((user, password)) => {
            Socks5Stream::connect_with_password_and_socket(tcp, target, user, password).await
        }
        None => Socks5Stream::connect_with_socket(tcp, target).await,
    };
    opened.map_err(|e| e.to_string())
}
