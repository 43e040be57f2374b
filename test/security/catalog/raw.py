# A raw TCP client for the network attacks, run inside the sandbox:
#   raw.py HOST PORT CHUNK...   each CHUNK is hex ("h:...") or text with \r\n
#                               escapes; after each chunk it prints what came
#                               back as "REPLY i <hex>", then "CLOSED" or "OPEN".
#   raw.py tls HOST PORT CONNECT_AUTHORITY SNI HOSTHDR
#                               CONNECT through the proxy, then TLS with SNI,
#                               then GET / with Host: HOSTHDR; prints the
#                               CONNECT status line and the body or the error.
#   raw.py relay LPORT UPORT    forwards 127.0.0.1:LPORT -> 127.0.0.1:UPORT (X13)
import socket, ssl, sys, threading, time


def recv_some(s, idle=0.3, total=2.5):
    s.settimeout(total)
    out = b''
    try:
        d = s.recv(65536)
        if not d:
            return out, True
        out += d
        s.settimeout(idle)
        while True:
            d = s.recv(65536)
            if not d:
                return out, True
            out += d
    except socket.timeout:
        return out, False
    except OSError:
        return out, True


def chunk(arg):
    if arg.startswith('h:'):
        return bytes.fromhex(arg[2:])
    return arg.encode('latin1').decode('unicode_escape').encode('latin1')


def raw(host, port, chunks):
    try:
        s = socket.create_connection((host, int(port)), timeout=4)
    except OSError as e:
        print('CONNECT-ERRNO', e.errno)
        return
    closed = False
    for i, c in enumerate(chunks):
        try:
            s.sendall(chunk(c))
        except OSError as e:
            print('SEND-ERRNO', e.errno)
            closed = True
            break
        out, closed = recv_some(s)
        print('REPLY', i, out.hex())
        if closed:
            break
    print('CLOSED' if closed else 'OPEN')


def tls(host, port, authority, sni, hosthdr):
    s = socket.create_connection((host, int(port)), timeout=4)
    s.sendall(('CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n' % (authority, authority)).encode())
    head = b''
    while b'\r\n\r\n' not in head:
        d = s.recv(1)
        if not d:
            break
        head += d
    print('STATUS', head.split(b'\r\n')[0].decode('latin1'))
    if b' 200 ' not in head.split(b'\r\n')[0] + b' ':
        return
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        t = ctx.wrap_socket(s, server_hostname=sni)
        t.sendall(('GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' % hosthdr).encode())
        body = b''
        while True:
            d = t.recv(65536)
            if not d:
                break
            body += d
        print('TLS-BODY', body.split(b'\r\n\r\n', 1)[-1].decode('latin1').strip())
    except (OSError, ssl.SSLError) as e:
        print('TLS-ERROR', type(e).__name__)


def relay(lport, uport):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(('127.0.0.1', int(lport)))
    srv.listen(8)
    print('LISTENING', flush=True)

    def pipe(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    while True:
        c, _ = srv.accept()
        u = socket.create_connection(('127.0.0.1', int(uport)))
        threading.Thread(target=pipe, args=(c, u), daemon=True).start()
        threading.Thread(target=pipe, args=(u, c), daemon=True).start()


if __name__ == '__main__':
    sys.stdout.reconfigure(line_buffering=True)
    if sys.argv[1] == 'tls':
        tls(*sys.argv[2:7])
    elif sys.argv[1] == 'relay':
        relay(sys.argv[2], sys.argv[3])
    else:
        raw(sys.argv[1], sys.argv[2], sys.argv[3:])
