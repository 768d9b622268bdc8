#!/usr/bin/python3
"""Send several HTTP/2 streams concurrently on one connection; print JSON.

Run with Debian's /usr/bin/python3 (python3-h2). Called by MisdirectTest->h2
with one argument, a JSON object:

  {"port": 8443, "plain": false, "sni": "alpha.test" | null,
   "address": "127.0.0.1" | "::1" (optional), "source": "127.0.0.2" (optional),
   "cert": "/path/client.crt" | null, "key": "/path/client.key" | null,
   "timeout": 10,
   "upgrade": {"host": "alpha.test", "path": "/", "early": false,
               "headers": ["name", "value", ...]} (optional),
   "streams": [{"authority": "beta.test" | null, "path": "/",
                "method": "GET", "scheme": "https" | "http",
                "headers": ["name", "value", ...]}, ...]}

It connects to 127.0.0.1:port, or to "address" (a loopback address) from
"source" when given. On TLS it offers ALPN h2 and sends the
given SNI, or no SNI at all when sni is null, whatever the :authority of the
streams (Python passes an ASCII SNI through its IDNA codec unchanged);
certificates are not verified. With plain true it speaks h2c with prior
knowledge, or, when "upgrade" is given, by an HTTP/1.1 upgrade (RFC 7540
3.2): GET path with Host, Connection: Upgrade, HTTP2-Settings, Upgrade:
h2c and HTTP2-Settings, then the extra headers; the server answers that
request as stream 1. The given streams, from stream 3 on, are opened in
one write once stream 1 has ended, or, with "early": true, sent with the
connection preface right behind the HTTP/1.1 request, before the 101:
httpd 2.4.71 under the event MPM ends an upgraded connection as soon as
mod_http2 hands it back to the MPM (no stream left, or all waiting for
flow control), so later streams only reach it so. A null or missing
authority omits :authority. Header names and values are sent exactly as
given (no validation or normalisation), so
tests can send what a broken client would.

Output (stdout, one JSON object):

  {"alpn": "h2", "sni": ..., "streams": [{"id": 1, "authority": ...,
   "path": ..., "status": 421 | null, "headers": {...}, "body": "...",
   "reset": null | error code, "error": null | "..."}, ...],
   "goaway": null | error code, "goaway_last_stream_id": null | id,
   "connection_alive_after": true | false, "error": null | "..."}

With "upgrade" the output also has "upgrade": {"status": 101 | ...,
"headers": {...}} (the HTTP/1.1 answer; lower-case names), stream 1 comes
first in "streams" with the upgrade's host as its authority, and "alpn"
is "h2c"; when the answer is not 101, the connection ends there, stream 1
is missing, streams sent "early" say "no upgrade" and "error" says
"no upgrade: STATUS".

Bodies and header values are decoded as ISO-8859-1, so every byte maps to one
character. connection_alive_after is true when, after all streams finished,
the server answered a PING and had sent no GOAWAY. Exit status 2 (message on
stderr) when the connection or TLS handshake fails; 0 otherwise.
"""

import json
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from h2.connection import ConnectionState

READ_SIZE = 65536
FRAME_HEADER = 9  # bytes: 24-bit length, type, flags, stream id
PING_DATA = b"misdirct"  # any 8 bytes
PING_WAIT = 2.0  # seconds


def latin1(data):
    return data.decode("iso-8859-1")


def connect(spec):
    try:
        source = spec.get("source")
        sock = socket.create_connection(
            (spec.get("address") or "127.0.0.1", spec["port"]),
            timeout=spec["timeout"],
            source_address=(source, 0) if source else None)
        if spec.get("plain"):
            return sock, None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        if spec.get("cert"):
            ctx.load_cert_chain(spec["cert"], spec["key"])
        # server_hostname=None sends no SNI extension at all.
        tls = ctx.wrap_socket(sock, server_hostname=spec.get("sni"))
        return tls, tls.selected_alpn_protocol()
    except OSError as e:  # ssl.SSLError included
        sys.stderr.write("h2streams: connecting to 127.0.0.1:%s (SNI %r) "
                         "failed: %s\n" % (spec["port"], spec.get("sni"), e))
        sys.exit(2)


def request_headers(stream, scheme):
    headers = [(":method", stream.get("method", "GET")),
               (":scheme", stream.get("scheme", scheme)),
               (":path", stream.get("path", "/"))]
    if stream.get("authority") is not None:
        headers.insert(2, (":authority", stream["authority"]))
    extra = stream.get("headers", [])
    headers += list(zip(extra[0::2], extra[1::2]))
    return [(n.encode("iso-8859-1"), v.encode("iso-8859-1"))
            for n, v in headers]


class Client:
    def __init__(self, sock, timeout):
        self.sock = sock
        self.deadline = time.monotonic() + timeout
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False))
        self.inbuf = b""
        self.results = {}
        self.goaway = None
        self.goaway_last_stream_id = None
        self.ping_acked = False
        self.closed = False

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def recv(self):
        """Reads what has come, waiting at most until the deadline."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timeout")
        self.sock.settimeout(remaining)
        return self.sock.recv(READ_SIZE)

    def pump(self):
        """Read once and handle the events; False when no more can come."""
        data = self.recv()
        if not data:
            self.closed = True
            return False
        self.feed(data)
        return True

    def handle(self, event):
        if isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = int(event.error_code)
            self.goaway_last_stream_id = event.last_stream_id
            for sid, res in self.results.items():
                if not res["done"] and sid > (event.last_stream_id or 0):
                    res["error"] = "refused by GOAWAY"
                    res["done"] = True
            return
        if isinstance(event, h2.events.PingAckReceived):
            self.ping_acked = True
            return
        # Ignore other connection-level events and pushed streams.
        result = self.results.get(getattr(event, "stream_id", None))
        if result is None:
            return
        if isinstance(event, h2.events.ResponseReceived):
            for name, value in event.headers:
                name, value = latin1(name), latin1(value)
                if name == ":status":
                    result["status"] = int(value)
                elif name in result["headers"]:
                    result["headers"][name] += ", " + value
                else:
                    result["headers"][name] = value
        elif isinstance(event, h2.events.DataReceived):
            result["body"] += latin1(event.data)
            self.conn.acknowledge_received_data(
                event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            result["done"] = True
        elif isinstance(event, h2.events.StreamReset):
            result["reset"] = int(event.error_code)
            result["error"] = "reset"
            result["done"] = True

    def pending(self):
        return [r for r in self.results.values() if not r["done"]]

    def feed(self, data):
        """Handles received bytes, frame by frame."""
        self.inbuf += data
        # Frame by frame: streams up to a GOAWAY's last stream id may still
        # complete (RFC 9113 6.8), but h2 refuses any frame after a GOAWAY
        # unless its state is reopened right after that frame.
        while len(self.inbuf) >= FRAME_HEADER:
            end = FRAME_HEADER + int.from_bytes(self.inbuf[:3], "big")
            if len(self.inbuf) < end:
                break
            frame, self.inbuf = self.inbuf[:end], self.inbuf[end:]
            for event in self.conn.receive_data(frame):
                self.handle(event)
            if self.goaway is not None:
                self.conn.state_machine.state = ConnectionState.CLIENT_OPEN
        self.flush()

    def new_result(self, sid, authority, path):
        self.results[sid] = {
            "id": sid, "authority": authority, "path": path,
            "status": None, "headers": {}, "body": "", "reset": None,
            "error": None, "done": False}

    def open_streams(self, streams, scheme):
        for stream in streams:
            sid = self.conn.get_next_available_stream_id()
            self.new_result(sid, stream.get("authority"),
                            stream.get("path", "/"))
            self.conn.send_headers(sid, request_headers(stream, scheme),
                                   end_stream=True)

    def finish(self):
        while self.pending() and self.pump():
            pass
        for res in self.pending():
            res["error"] = "connection closed"

    def run(self, streams, scheme):
        self.conn.initiate_connection()
        self.open_streams(streams, scheme)
        # One write: every stream is in flight before the first response.
        self.flush()
        self.finish()

    def read_head(self):
        """Reads an HTTP/1.1 response head; returns it and what follows."""
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = self.recv()
            if not data:
                raise ConnectionError("closed before the upgrade's answer")
            buf += data
        head, rest = buf.split(b"\r\n\r\n", 1)
        status_line, *lines = latin1(head).split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            headers[name] = (headers[name] + ", " + value
                             if name in headers else value)
        return {"status": int(status_line.split(" ")[1]),
                "headers": headers}, rest

    def run_upgrade(self, spec, streams):
        """h2c by Upgrade; returns the status and headers of the answer to
        the HTTP/1.1 request, which after a 101 is stream 1."""
        settings = self.conn.initiate_upgrade_connection()
        # RFC 7540 3.2.1: base64url without padding.
        lines = ["GET %s HTTP/1.1" % spec.get("path", "/"),
                 "Host: %s" % spec["host"],
                 "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c",
                 "HTTP2-Settings: %s" % latin1(settings).rstrip("=")]
        extra = spec.get("headers", [])
        lines += ["%s: %s" % nv for nv in zip(extra[0::2], extra[1::2])]
        wire = ("\r\n".join(lines) + "\r\n\r\n").encode("iso-8859-1")
        early = spec.get("early")
        if early:
            # The preface and the streams right behind the request.
            self.open_streams(streams, "http")
            wire += self.conn.data_to_send()
        self.sock.sendall(wire)
        answer, rest = self.read_head()
        if answer["status"] != 101:
            for res in self.pending():
                res["error"] = "no upgrade"
            return answer
        self.new_result(1, spec["host"], spec.get("path", "/"))
        self.inbuf = rest
        if not early:
            self.feed(b"")  # sends the preface, handles what came
            while not self.results[1]["done"] and self.pump():
                pass
            self.open_streams(streams, "http")
            self.flush()
        self.feed(b"")
        self.finish()
        return answer

    def alive(self):
        """True when the server still answers a PING and sent no GOAWAY."""
        if self.goaway is not None or self.closed:
            return False
        # A live server acks at once; do not wait out the whole timeout.
        self.deadline = min(self.deadline, time.monotonic() + PING_WAIT)
        self.conn.ping(PING_DATA)
        self.flush()
        try:
            while (not self.ping_acked and self.goaway is None
                   and self.pump()):
                pass
        except (OSError, h2.exceptions.ProtocolError):
            return False
        return self.ping_acked and self.goaway is None


def main():
    spec = json.loads(sys.argv[1])
    if spec.get("upgrade"):
        spec["plain"] = True  # h2c by Upgrade exists only in clear
    sock, alpn = connect(spec)
    out = {"alpn": "h2c" if spec.get("plain") else alpn,
           "sni": spec.get("sni"), "streams": [], "goaway": None,
           "goaway_last_stream_id": None, "connection_alive_after": False,
           "error": None}
    if not spec.get("plain") and alpn != "h2":
        out["error"] = "ALPN selected %r, not h2" % alpn
    else:
        client = Client(sock, spec["timeout"])
        try:
            if spec.get("upgrade"):
                out["upgrade"] = client.run_upgrade(spec["upgrade"],
                                                    spec["streams"])
                if out["upgrade"]["status"] != 101:
                    out["error"] = "no upgrade: %d" % out["upgrade"]["status"]
            else:
                client.run(spec["streams"], "http" if spec.get("plain")
                           else "https")
            if out["error"] is None:
                out["connection_alive_after"] = client.alive()
        except (OSError, h2.exceptions.ProtocolError) as e:
            out["error"] = "%s: %s" % (type(e).__name__, e)
            for res in client.pending():
                res["error"] = out["error"]
        out["streams"] = [dict((k, v) for k, v in r.items() if k != "done")
                          for _, r in sorted(client.results.items())]
        out["goaway"] = client.goaway
        out["goaway_last_stream_id"] = client.goaway_last_stream_id
    try:
        sock.close()
    except OSError:
        pass
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
