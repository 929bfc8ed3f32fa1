//! A forward HTTP proxy on 127.0.0.1 that connects every request to 127.0.0.1, on the port the
//! URL names, whatever its host: WebKitGTK has no switch that maps host names (Chromium's
//! `--host-resolver-rules`, Firefox's `network.dns.forceResolve`), but it takes a proxy, so the
//! pages' `*.test` origins reach the loopback servers through this one.
//!
//! `CONNECT host:port` (an `https` origin) becomes a tunnel to `127.0.0.1:port`; a request in
//! absolute form (`GET http://host:port/path HTTP/1.1`) is sent to `127.0.0.1:port` in origin
//! form with `Connection: close`, every other byte as the browser wrote it, so that each
//! connection carries one exchange to one host. Plain threads and blocking sockets: a test's
//! proxy carries a few thousand loopback exchanges.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

/// The longest request head the proxy reads (the differential suite's longest is a few KiB).
const MAX_HEAD: usize = 64 * 1024;

/// A running proxy; stopped when dropped.
#[derive(Debug)]
pub struct LoopbackProxy {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl LoopbackProxy {
    /// Starts the proxy on an ephemeral 127.0.0.1 port.
    ///
    /// # Errors
    /// When no port can be bound.
    pub fn start() -> Result<LoopbackProxy, String> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .map_err(|e| format!("bind loopback proxy: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("loopback proxy address: {e}"))?
            .port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(conn) = conn {
                    thread::spawn(move || {
                        let _ = serve(conn);
                    });
                }
            }
        });
        Ok(LoopbackProxy { port, stop })
    }

    /// The proxy's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for LoopbackProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accepting thread so that it sees the flag.
        let _ = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], self.port)));
    }
}

/// The port of `host:port` or of an absolute `http://host[:port]/…` URL.
fn port_of(authority_or_url: &str) -> Option<(u16, String)> {
    let (rest, default) = match authority_or_url.split_once("://") {
        Some(("http", rest)) => (rest, 80),
        Some(("https", rest)) => (rest, 443),
        Some(_) => return None,
        None => (authority_or_url, 443),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let port = match host_port.rsplit_once(':') {
        Some((_, p)) if !p.ends_with(']') => p.parse().ok()?,
        _ => default,
    };
    Some((port, path))
}

fn serve(mut client: TcpStream) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::other("request head too long"));
        }
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = &buf[..end - 4];
    let rest = &buf[end..];
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let mut parts = first.split(' ');
    let (method, target, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or("HTTP/1.1"),
    );
    let Some((port, path)) = port_of(target) else {
        client.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")?;
        return Ok(());
    };
    let Ok(upstream) = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))) else {
        client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")?;
        return Ok(());
    };
    let mut up = upstream.try_clone()?;
    if method == "CONNECT" {
        client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")?;
        up.write_all(rest)?;
    } else {
        // The header lines' bytes as the browser wrote them, less the hop-by-hop ones.
        let mut out = format!("{method} {path} {version}\r\n").into_bytes();
        for line in lines {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            let name = String::from_utf8_lossy(name);
            if ["connection", "proxy-connection", "keep-alive"]
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name.trim()))
            {
                continue;
            }
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        up.write_all(&out)?;
        up.write_all(rest)?;
    }
    relay(client, upstream)
}

/// Copies both ways until the server closes (or either side fails), then closes both.
fn relay(client: TcpStream, upstream: TcpStream) -> io::Result<()> {
    let mut from_client = client.try_clone()?;
    let mut to_upstream = upstream.try_clone()?;
    let forward = thread::spawn(move || {
        let _ = io::copy(&mut from_client, &mut to_upstream);
        let _ = to_upstream.shutdown(Shutdown::Write);
    });
    let mut from_upstream = upstream;
    let mut to_client = client;
    let _ = io::copy(&mut from_upstream, &mut to_client);
    let _ = to_client.shutdown(Shutdown::Both);
    let _ = from_upstream.shutdown(Shutdown::Both);
    let _ = forward.join();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::port_of;

    #[test]
    fn ports_of_targets() {
        assert_eq!(
            port_of("http://page.test:8000/c/x?y"),
            Some((8000, "/c/x?y".to_owned()))
        );
        assert_eq!(port_of("http://page.test/"), Some((80, "/".to_owned())));
        assert_eq!(port_of("page.test:4443"), Some((4443, "/".to_owned())));
        assert_eq!(
            port_of("http://user:pw@a.test:81/p"),
            Some((81, "/p".to_owned()))
        );
        assert_eq!(port_of("ftp://a.test/"), None);
    }
}
