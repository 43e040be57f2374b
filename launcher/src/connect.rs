//! `cordon-launcher connect HOST PORT`: the ssh ProxyCommand inside the
//! sandbox. The sandbox has no route out, so ssh's connection goes as a
//! SOCKS5 CONNECT through the relay on 127.0.0.1:PROXY_PORT, where the host
//! proxy applies the network policy; then stdin/stdout carry the stream.

use crate::sys::relay::take_stdio;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, TcpStream};
use std::thread;

pub fn connect_main(host: &str, port: u16, proxy_port: u16) -> i32 {
    match run(host, port, proxy_port) {
        Ok(()) => 0,
        Err(msg) => {
            eprintln!("cordon-launcher: connect: {msg}");
            1
        }
    }
}

fn run(host: &str, port: u16, proxy_port: u16) -> Result<(), String> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, proxy_port))
        .map_err(|e| format!("proxy 127.0.0.1:{proxy_port}: {}", crate::sys::errno_text(&e)))?;
    let _ = s.set_nodelay(true);
    socks_connect(&mut s, host, port).map_err(|e| format!("{host}:{port}: {e}"))?;
    let stdin = File::from(take_stdio(0).ok_or("standard input is closed")?);
    let stdout = File::from(take_stdio(1).ok_or("standard output is closed")?);
    let up = s.try_clone().map_err(|e| crate::sys::errno_text(&e))?;
    let sender = thread::spawn(move || -> io::Result<()> {
        let r = copy(stdin, &up);
        // End of our input (or an error) ends the request direction only;
        // the answer may still be on its way.
        let _ = up.shutdown(Shutdown::Write);
        r
    });
    let received = copy(&s, stdout);
    // The output direction is over: stdout was closed by copy (the reader
    // sees end of file).
    if let Err(e) = received {
        let _ = s.shutdown(Shutdown::Both);
        return Err(format!("{host}:{port}: {}", crate::sys::errno_text(&e)));
    }
    match sender.join() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{host}:{port}: {}", crate::sys::errno_text(&e))),
        Err(_) => Err("internal error".into()),
    }
}

/// Copies until end of input; `to` is dropped (closed) at the end.
fn copy<R: Read, W: Write>(mut from: R, mut to: W) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
    }
}

/// What went wrong in the SOCKS5 exchange, worded for the user.
#[derive(Debug, PartialEq, Eq)]
pub struct SocksError(pub String);

impl std::fmt::Display for SocksError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn io_err(e: io::Error) -> SocksError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        SocksError("the proxy closed the connection".into())
    } else {
        SocksError(crate::sys::errno_text(&e))
    }
}

/// The CONNECT request for HOST:PORT: an IP literal (IPv6 with or without
/// brackets) as such, anything else as a domain name for the proxy to judge.
pub fn connect_request(host: &str, port: u16) -> Result<Vec<u8>, SocksError> {
    let mut req = vec![5, 1, 0];
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => {
            req.push(1);
            req.extend_from_slice(&a.octets());
        }
        Ok(IpAddr::V6(a)) => {
            req.push(4);
            req.extend_from_slice(&a.octets());
        }
        Err(_) => {
            if host.is_empty() || host.len() > 255 {
                return Err(SocksError("invalid host name".into()));
            }
            req.push(3);
            req.push(host.len() as u8);
            req.extend_from_slice(host.as_bytes());
        }
    }
    req.extend_from_slice(&port.to_be_bytes());
    Ok(req)
}

pub fn reply_text(rep: u8) -> String {
    match rep {
        1 => "the proxy failed (general failure)".into(),
        2 => "blocked by the sandbox network policy".into(),
        3 => "network unreachable".into(),
        4 => "host unreachable".into(),
        5 => "connection refused".into(),
        6 => "timed out".into(),
        7 => "command not supported by the proxy".into(),
        8 => "address type not supported by the proxy".into(),
        n => format!("the proxy refused (SOCKS reply {n})"),
    }
}

/// RFC 1928 client side, no authentication, CONNECT only.
pub fn socks_connect<S: Read + Write>(s: &mut S, host: &str, port: u16) -> Result<(), SocksError> {
    let req = connect_request(host, port)?;
    s.write_all(&[5, 1, 0]).map_err(io_err)?;
    let mut m = [0u8; 2];
    s.read_exact(&mut m).map_err(io_err)?;
    if m[0] != 5 {
        return Err(SocksError("the proxy does not speak SOCKS5".into()));
    }
    if m[1] != 0 {
        return Err(SocksError("the proxy refused the no-authentication method".into()));
    }
    s.write_all(&req).map_err(io_err)?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head).map_err(io_err)?;
    if head[0] != 5 {
        return Err(SocksError("the proxy does not speak SOCKS5".into()));
    }
    if head[1] != 0 {
        return Err(SocksError(reply_text(head[1])));
    }
    // BND.ADDR and BND.PORT: read and ignore, so the stream starts clean.
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut l = [0u8; 1];
            s.read_exact(&mut l).map_err(io_err)?;
            l[0] as usize + 2
        }
        t => return Err(SocksError(format!("the proxy sent a bad reply (address type {t})"))),
    };
    let mut skip = vec![0u8; rest];
    s.read_exact(&mut skip).map_err(io_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn requests_by_address_type() {
        assert_eq!(connect_request("github.com", 22).unwrap(), [&[5, 1, 0, 3, 10][..], b"github.com", &[0, 22]].concat());
        assert_eq!(connect_request("10.1.2.3", 443).unwrap(), vec![5, 1, 0, 1, 10, 1, 2, 3, 1, 187]);
        let v6 = connect_request("[::1]", 80).unwrap();
        assert_eq!(v6[3], 4);
        assert_eq!(v6.len(), 4 + 16 + 2);
        assert_eq!(connect_request("::1", 80).unwrap(), v6);
        assert!(connect_request(&"a".repeat(256), 1).is_err());
    }

    /// A one-shot SOCKS5 server answering `rep`; returns what it was asked.
    fn fake_proxy(rep: u8, atyp: u8) -> (u16, thread::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let h = thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut g = [0u8; 3];
            s.read_exact(&mut g).unwrap();
            assert_eq!(g, [5, 1, 0]);
            s.write_all(&[5, 0]).unwrap();
            let mut head = [0u8; 5];
            s.read_exact(&mut head).unwrap();
            let mut name = vec![0u8; head[4] as usize + 2];
            s.read_exact(&mut name).unwrap();
            let mut reply = vec![5, rep, 0, atyp];
            reply.extend_from_slice(match atyp {
                1 => &[127, 0, 0, 1, 0, 1][..],
                3 => &[3, b'a', b'b', b'c', 0, 1][..],
                _ => &[0u8; 18][..],
            });
            reply.extend_from_slice(b"DATA");
            s.write_all(&reply).unwrap();
            name
        });
        (port, h)
    }

    #[test]
    fn handshake_outcomes() {
        for atyp in [1u8, 3, 4] {
            let (port, h) = fake_proxy(0, atyp);
            let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
            socks_connect(&mut s, "git.test", 2222).unwrap();
            let mut d = [0u8; 4];
            s.read_exact(&mut d).unwrap();
            assert_eq!(&d, b"DATA");
            assert_eq!(h.join().unwrap(), [b"git.test", &[8, 174][..]].concat());
        }
        let (port, h) = fake_proxy(2, 1);
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        let e = socks_connect(&mut s, "evil.test", 22).unwrap_err();
        assert_eq!(e.0, "blocked by the sandbox network policy");
        h.join().unwrap();
    }
}
