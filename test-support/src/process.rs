//! Child processes of a test, and the ports they listen on.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A child process, killed and reaped when dropped.
#[derive(Debug)]
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port on 127.0.0.1 that nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// Waits until something listens on 127.0.0.1:`port` (5 s at most, then panics).
pub async fn listening(port: u16) {
    for _ in 0..250 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("nothing listens on {port} after 5 s");
}

/// Runs `cmd` (its output discarded) until something listens on `port`.
pub async fn spawn_until_listening(mut cmd: std::process::Command, port: u16) -> Child {
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
    let child = Child(child);
    listening(port).await;
    child
}

/// `tinyproxy` on 127.0.0.1 asking for Basic authentication `ada:secret`, configured in `dir`;
/// `Err` names what is missing.
pub async fn tinyproxy(dir: &Path) -> Result<(Child, u16), String> {
    let Some(bin) = ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
    else {
        return Err("tinyproxy".to_owned());
    };
    let port = free_port();
    let conf = dir.join("tinyproxy.conf");
    std::fs::write(
        &conf,
        format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 200\nAllow 127.0.0.1\n\
             BasicAuth ada secret\nLogLevel Critical\n"
        ),
    )
    .map_err(|e| format!("{}: {e}", conf.display()))?;
    let mut cmd = std::process::Command::new(bin);
    cmd.args(["-d", "-c"]).arg(&conf);
    Ok((spawn_until_listening(cmd, port).await, port))
}
