//! A small blocking HTTP/1.1 client, one request per connection: how other processes (the
//! CLI's `replay`, the benches, tests) read a running emulator's `/stats` and drive its
//! admin API, and how tests talk to moto and to Fluent Bit's HTTP server.
//!
//! It is hyper's HTTP/1.1 client driven by a current-thread tokio runtime made for the
//! call, so it can be used from any thread, also from inside another tokio runtime.
//! Plain `http://` only: it does not speak TLS, so it cannot reach an emulator started
//! in its TLS mode ([`crate::tls`]); use an HTTPS client with the emulator's CA for that.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;

/// Largest response body read.
const MAX_RESPONSE: usize = 256 * 1024 * 1024;
/// Longest wait for the TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the response head, then for each piece of the body.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends one request to `endpoint` (`http://host[:port][/...]`; the path of the endpoint
/// is not used) and returns the status and the whole body (chunked bodies decoded).
pub fn request(
    endpoint: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<(u16, Vec<u8>)> {
    let rest = endpoint.strip_prefix("http://").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("only http:// endpoints can be asked for {path}: {endpoint}"),
        )
    })?;
    let authority = rest.split('/').next().unwrap_or("");
    let host_port = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = host_port.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("cannot resolve {authority}"),
        )
    })?;
    let req = build(authority, method, path, headers, body)?;
    block_on(exchange(addr, req))
}

/// The request: `Host`, `Content-Length` (also for an empty body) and
/// `Connection: close` unless `headers` has them.
fn build(
    authority: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Request<Full<Bytes>>> {
    let invalid =
        |e: &dyn std::fmt::Display| io::Error::new(io::ErrorKind::InvalidInput, e.to_string());
    let method = Method::from_bytes(method.as_bytes()).map_err(|e| invalid(&e))?;
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| invalid(&e))?;
    let h = req.headers_mut();
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| invalid(&e))?;
        let value = HeaderValue::from_str(v).map_err(|e| invalid(&e))?;
        h.append(name, value);
    }
    if !h.contains_key(HOST) {
        h.insert(
            HOST,
            HeaderValue::from_str(authority).map_err(|e| invalid(&e))?,
        );
    }
    if !h.contains_key(CONTENT_LENGTH) {
        h.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    if !h.contains_key(CONNECTION) {
        h.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(req)
}

/// Connects, sends `req` and reads the whole answer.
async fn exchange(addr: SocketAddr, req: Request<Full<Bytes>>) -> io::Result<(u16, Vec<u8>)> {
    let tcp = timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect(addr),
        "connect",
    )
    .await??;
    let (mut sender, conn) = http1::Builder::new()
        // Header names as given (`Authorization`, not `authorization`), as curl does.
        .title_case_headers(true)
        .handshake(TokioIo::new(tcp))
        .await
        .map_err(to_io)?;
    let conn = tokio::spawn(conn);
    let resp = timeout(IO_TIMEOUT, sender.send_request(req), "response")
        .await?
        .map_err(to_io)?;
    let status = resp.status().as_u16();
    let mut incoming = resp.into_body();
    let mut out = Vec::new();
    while let Some(frame) = timeout(IO_TIMEOUT, incoming.frame(), "response body").await? {
        if let Ok(data) = frame.map_err(to_io)?.into_data() {
            if out.len() + data.len() > MAX_RESPONSE {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("response body larger than {MAX_RESPONSE} bytes"),
                ));
            }
            out.extend_from_slice(&data);
        }
    }
    drop(sender);
    conn.abort();
    Ok((status, out))
}

async fn timeout<T>(limit: Duration, f: impl Future<Output = T>, what: &str) -> io::Result<T> {
    tokio::time::timeout(limit, f).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("HTTP {what}: no answer within {limit:?}"),
        )
    })
}

fn to_io(e: hyper::Error) -> io::Error {
    // hyper wraps the socket's error when there is one (refused, reset): keep its kind.
    let kind = std::error::Error::source(&e)
        .and_then(|s| s.downcast_ref::<io::Error>())
        .map(io::Error::kind);
    let kind = kind.unwrap_or(if e.is_incomplete_message() {
        io::ErrorKind::UnexpectedEof
    } else {
        io::ErrorKind::InvalidData
    });
    io::Error::new(kind, e)
}

/// Runs `f` to completion on a current-thread runtime of its own; on a thread of its own
/// when the caller is already inside a tokio runtime (which cannot block on another).
fn block_on<T: Send>(f: impl Future<Output = io::Result<T>> + Send) -> io::Result<T> {
    let run = move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(f)
    };
    if tokio::runtime::Handle::try_current().is_err() {
        return run();
    }
    std::thread::scope(|s| {
        s.spawn(run)
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A one-shot server: answers the first connection with `answer`, returns what it read.
    fn serve_once(answer: &'static [u8]) -> (String, std::thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // The head, then the body (unread bytes at close would reset the connection).
            let head_len = loop {
                if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "request head");
                got.extend_from_slice(&buf[..n]);
            };
            let head = String::from_utf8_lossy(&got[..head_len]).to_ascii_lowercase();
            let body_len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse().unwrap());
            while got.len() < head_len + body_len {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "request body");
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(answer).unwrap();
            got
        });
        (endpoint, t)
    }

    #[test]
    fn chunked_body_and_request_head() {
        let (endpoint, server) = serve_once(
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        );
        let (status, body) = request(
            &endpoint,
            "GET",
            "/stats?x=1",
            &[("Accept", "application/json")],
            b"",
        )
        .unwrap();
        assert_eq!((status, body.as_slice()), (201, &b"abcde"[..]));
        let head = String::from_utf8(server.join().unwrap()).unwrap();
        let authority = endpoint.strip_prefix("http://").unwrap();
        assert!(head.starts_with("GET /stats?x=1 HTTP/1.1\r\n"), "{head}");
        for line in [
            "Accept: application/json".to_string(),
            format!("Host: {authority}"),
            "Content-Length: 0".to_string(),
            "Connection: close".to_string(),
        ] {
            assert!(head.contains(&format!("{line}\r\n")), "{line} in {head}");
        }
    }

    #[test]
    fn body_until_close_and_errors() {
        let (endpoint, server) =
            serve_once(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it");
        let (status, body) = request(&endpoint, "POST", "/", &[], b"x").unwrap();
        assert_eq!((status, body.as_slice()), (200, &b"all of it"[..]));
        server.join().unwrap();

        // A truncated chunked body is an error, not a short body.
        let (endpoint, server) =
            serve_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nabc");
        assert!(request(&endpoint, "GET", "/", &[], b"").is_err());
        server.join().unwrap();

        let e = request("https://127.0.0.1:1", "GET", "/", &[], b"").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        // Nothing listens on a port just freed.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = request(&format!("http://127.0.0.1:{port}"), "GET", "/", &[], b"").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[tokio::test]
    async fn works_inside_a_runtime() {
        let (endpoint, server) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        let (status, body) = request(&endpoint, "GET", "/", &[], b"").unwrap();
        assert_eq!((status, body.as_slice()), (200, &b"ok"[..]));
        server.join().unwrap();
    }
}
