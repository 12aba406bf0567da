//! A forward proxy stand-in on 127.0.0.1: `CONNECT host:port` tunnels (https) and
//! absolute-form requests (`POST http://host:port/ ...`, plain http), counted with the
//! `Proxy-Authorization` each carried. Hosts under `.test` are reached at 127.0.0.1 (so a
//! test can use a name no resolver knows); anything else but loopback is refused.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

/// One connection the proxy served.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `CONNECT` (a tunnel) or the method of an absolute-form request.
    pub method: String,
    /// The `host:port` asked for.
    pub target: String,
    pub authorization: Option<String>,
}

pub struct Proxy {
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Proxy {
    pub fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let s = s.clone();
                thread::spawn(move || {
                    let _ = serve(conn, &s);
                });
            }
        });
        Proxy { port, seen }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn tunnels(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == "CONNECT")
            .collect()
    }
}

fn serve(client: TcpStream, seen: &Mutex<Vec<Seen>>) -> io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let end = line == "\r\n";
        head.push(line);
        if end {
            break;
        }
    }
    let mut first = head[0].split_whitespace();
    let method = first.next().unwrap_or_default().to_string();
    let uri = first.next().unwrap_or_default().to_string();
    let version = first.next().unwrap_or("HTTP/1.1").to_string();
    let authorization = head.iter().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("proxy-authorization")
            .then(|| v.trim().to_string())
    });
    let (target, path) = if method == "CONNECT" {
        (uri.clone(), String::new())
    } else {
        let rest = uri.strip_prefix("http://").unwrap_or(&uri);
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        (authority.to_string(), path.to_string())
    };
    seen.lock().unwrap().push(Seen {
        method: method.clone(),
        target: target.clone(),
        authorization,
    });
    let mut client_w = client.try_clone()?;
    let Some(upstream) = connect_local(&target) else {
        client_w.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")?;
        return Ok(());
    };
    let mut up_w = upstream.try_clone()?;
    if method == "CONNECT" {
        client_w.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    } else {
        // Origin-form for the server; the proxy's own header stays here.
        let mut out = format!(
            "{method} {} {version}\r\n",
            if path.is_empty() { "/" } else { &path }
        );
        for l in &head[1..] {
            if !l.to_ascii_lowercase().starts_with("proxy-") {
                out.push_str(l);
            }
        }
        up_w.write_all(out.as_bytes())?;
    }
    // Whatever the reader buffered after the head belongs to the origin.
    let buffered = reader.buffer().to_vec();
    up_w.write_all(&buffered)?;
    let mut up_r = upstream.try_clone()?;
    let back = thread::spawn(move || {
        let _ = io::copy(&mut up_r, &mut client_w);
        let _ = client_w.shutdown(Shutdown::Write);
    });
    let mut inner = reader.into_inner();
    let _ = copy_raw(&mut inner, &mut up_w);
    let _ = up_w.shutdown(Shutdown::Write);
    let _ = back.join();
    Ok(())
}

fn copy_raw(from: &mut TcpStream, to: &mut TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n])?;
    }
}

/// Only loopback, and `.test` names as 127.0.0.1: a test never leaves the machine.
fn connect_local(target: &str) -> Option<TcpStream> {
    let (host, port) = target.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = if host.ends_with(".test") || host == "localhost" {
        "127.0.0.1".to_string()
    } else {
        host.to_string()
    };
    let addr: std::net::IpAddr = ip.parse().ok()?;
    if !addr.is_loopback() {
        return None;
    }
    TcpStream::connect((addr, port)).ok()
}
