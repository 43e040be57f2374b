//! The egress helper (docs/relay-protocol.md, "Version 2"). Forked by the
//! launcher while it is still in the host's network namespace, it is the
//! only sandbox process that can open a host-side TCP connection, and it
//! does exactly one thing: on a request `(id, ip, port)` from the relay it
//! connects to that literal address and sends the socket back with
//! SCM_RIGHTS, or an errno. It never resolves a name and never reads a byte
//! of a connection. The host proxy chose and checked the address; the relay
//! only passes on what the host's control connection told it.
//!
//! Wire format on the SOCK_SEQPACKET pair (one message each):
//!   request  = id (u64 LE) | port (u16 LE) | family (4 or 6) | 16 address bytes
//!   reply    = id (u64 LE) | errno (i32 LE, 0 = success; the socket rides along)

use crate::sys;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::thread;

pub const REQUEST_LEN: usize = 27;
pub const REPLY_LEN: usize = 12;
const EIO: i32 = 5;
const EAGAIN: i32 = 11;
const EINVAL: i32 = 22;
/// Pending connects only wait in the kernel; their threads need little stack.
const DIAL_STACK: usize = 64 * 1024;

pub fn encode_request(id: u64, addr: SocketAddr) -> [u8; REQUEST_LEN] {
    let mut m = [0u8; REQUEST_LEN];
    m[..8].copy_from_slice(&id.to_le_bytes());
    m[8..10].copy_from_slice(&addr.port().to_le_bytes());
    match addr.ip() {
        IpAddr::V4(a) => {
            m[10] = 4;
            m[11..15].copy_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            m[10] = 6;
            m[11..27].copy_from_slice(&a.octets());
        }
    }
    m
}

pub fn decode_request(m: &[u8]) -> Option<(u64, SocketAddr)> {
    if m.len() != REQUEST_LEN {
        return None;
    }
    let id = u64::from_le_bytes(m[..8].try_into().ok()?);
    let port = u16::from_le_bytes([m[8], m[9]]);
    let ip = match m[10] {
        4 => IpAddr::V4(Ipv4Addr::new(m[11], m[12], m[13], m[14])),
        6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&m[11..27]).ok()?)),
        _ => return None,
    };
    if port == 0 {
        return None;
    }
    Some((id, SocketAddr::new(ip, port)))
}

pub fn encode_reply(id: u64, errno: i32) -> [u8; REPLY_LEN] {
    let mut m = [0u8; REPLY_LEN];
    m[..8].copy_from_slice(&id.to_le_bytes());
    m[8..12].copy_from_slice(&errno.to_le_bytes());
    m
}

pub fn decode_reply(m: &[u8]) -> Option<(u64, i32)> {
    if m.len() != REPLY_LEN {
        return None;
    }
    Some((u64::from_le_bytes(m[..8].try_into().ok()?), i32::from_le_bytes(m[8..12].try_into().ok()?)))
}

/// The egress child's whole life: harden, then serve until the relay's end
/// of the pair closes.
pub fn main(sock: OwnedFd) -> ! {
    if let Err(e) = sys::relay::set_non_dumpable() {
        crate::report("egress", &format!("prctl(PR_SET_DUMPABLE): {e}"));
        sys::exit_now(125);
    }
    sys::relay::ignore_sigpipe();
    sys::relay::raise_nofile_limit();
    crate::security_helper_filter();
    serve(sock);
    sys::exit_now(0)
}

/// Answers requests until end of input (the relay is gone) or a fatal error.
pub fn serve(sock: OwnedFd) {
    let sock = Arc::new(sock);
    let mut buf = [0u8; 64];
    loop {
        let r = match sys::recv_msg(&sock, &mut buf, false) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        // A request never carries descriptors; any that came are dropped here.
        if r.len == 0 && r.fds.is_empty() {
            return;
        }
        let Some((id, addr)) = decode_request(&buf[..r.len]) else {
            if r.len >= 8 {
                let id = u64::from_le_bytes(buf[..8].try_into().unwrap_or_default());
                let _ = sys::send_msg(&sock, &encode_reply(id, EINVAL), None, None);
            }
            continue;
        };
        let s = sock.clone();
        let spawned = thread::Builder::new().stack_size(DIAL_STACK).spawn(move || dial(&s, id, addr));
        if spawned.is_err() {
            let _ = sys::send_msg(&sock, &encode_reply(id, EAGAIN), None, None);
        }
    }
}

fn dial(sock: &OwnedFd, id: u64, addr: SocketAddr) {
    match TcpStream::connect(addr) {
        Ok(s) => {
            let _ = s.set_nodelay(true);
            let _ = sys::send_msg(sock, &encode_reply(id, 0), Some(s.as_raw_fd()), None);
            // Our copy closes here; the relay holds its own.
        }
        Err(e) => {
            let _ = sys::send_msg(sock, &encode_reply(id, e.raw_os_error().unwrap_or(EIO)), None, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn wire_format_round_trips() {
        let a: SocketAddr = "[2001:db8::5]:443".parse().unwrap();
        assert_eq!(decode_request(&encode_request(7, a)), Some((7, a)));
        let b: SocketAddr = "10.1.2.3:8080".parse().unwrap();
        assert_eq!(decode_request(&encode_request(u64::MAX, b)), Some((u64::MAX, b)));
        assert_eq!(decode_request(&[0u8; 5]), None);
        let mut bad = encode_request(1, b);
        bad[10] = 5;
        assert_eq!(decode_request(&bad), None);
        assert_eq!(decode_reply(&encode_reply(9, -111)), Some((9, -111)));
    }

    #[test]
    fn dials_exactly_the_address_and_hands_back_the_socket() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = l.local_addr().unwrap();
        let (ours, theirs) = sys::seqpacket_pair().unwrap();
        let h = thread::spawn(move || serve(theirs));
        sys::send_msg(&ours, &encode_request(42, addr), None, None).unwrap();
        let mut buf = [0u8; 64];
        let r = sys::recv_msg(&ours, &mut buf, false).unwrap();
        assert_eq!(decode_reply(&buf[..r.len]), Some((42, 0)));
        let mut up = TcpStream::from(r.fds.into_iter().next().expect("a socket"));
        let (mut acc, _) = l.accept().unwrap();
        up.write_all(b"hi").unwrap();
        let mut got = [0u8; 2];
        acc.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi");
        // A port nobody listens on: the errno comes back, no socket.
        drop(l);
        sys::send_msg(&ours, &encode_request(43, addr), None, None).unwrap();
        let r = sys::recv_msg(&ours, &mut buf, false).unwrap();
        assert_eq!(decode_reply(&buf[..r.len]), Some((43, 111)));
        assert!(r.fds.is_empty());
        // IPv6 literals too (when this host has ::1).
        if let Ok(l6) = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)) {
            sys::send_msg(&ours, &encode_request(44, l6.local_addr().unwrap()), None, None).unwrap();
            let r = sys::recv_msg(&ours, &mut buf, false).unwrap();
            assert_eq!(decode_reply(&buf[..r.len]), Some((44, 0)));
            assert_eq!(r.fds.len(), 1);
            let (_a, peer) = l6.accept().unwrap();
            assert!(peer.is_ipv6());
        }
        drop(ours);
        h.join().unwrap();
    }
}
