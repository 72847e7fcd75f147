"""An npm registry's token API on 127.0.0.1, as documented in the npm registry's "User
Authentication" API document (https://github.com/npm/registry/blob/main/docs/user/authentication.md,
routes "Token List", "Token Create" and "Token Delete"):

- every route needs `Authorization: Bearer TOKEN` with a token that is not revoked; otherwise
  401 with an Error object;
- GET /-/npm/v1/tokens: a Page of Token objects, the token redacted and `key` the hexadecimal
  sha512 of the token (query `perPage`, 1-9999, default 10, and `page`, from 0; `urls.next` when
  more follow);
- POST /-/npm/v1/tokens with a Token Creation Request (`password`, optional `readonly`,
  `cidr_whitelist`): 401 with an Error when the password is not the user's; else 200 with the new
  Token (a UUID as `token`);
- DELETE /-/npm/v1/tokens/token/:hash (the key, or the token itself): 204.

With a seed given (base32, RFC 6238 TOTP: SHA-1, 6 digits, 30 s), creating a token also needs the
`npm-otp` header to hold a code of the seed (the document's "Two Factor Authentication",
`auth-only` mode; the code of the previous or next period is taken too), else 401 with
`www-authenticate: OTP`, as npm expects.

usage: npm_registry_server.py TOKEN PASSWORD [SEED]
Prints the port on the first line of stdout, then serves until killed. GET /_tokens (no
authentication: the test's view of the registry) lists the tokens with their state.
"""
import base64, datetime, hashlib, hmac, http.server, json, struct, sys, time, urllib.parse, uuid

password = sys.argv[2]
seed = sys.argv[3] if len(sys.argv) > 3 else None


def codes():
    key = base64.b32decode(seed.upper() + "=" * (-len(seed) % 8))
    now = int(time.time()) // 30
    out = []
    for step in (now - 1, now, now + 1):
        h = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
        o = h[-1] & 15
        out.append("%06d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7FFFFFFF) % 1000000))
    return out
tokens = {}  # token -> {"active", "created", "readonly", "cidr_whitelist"}


def issue(token, readonly=False, cidr=None):
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
    tokens[token] = {"active": True, "created": now.replace("+00:00", "Z"),
                     "readonly": bool(readonly), "cidr_whitelist": cidr}


def key(token):
    return hashlib.sha512(token.encode()).hexdigest()


def shown(token, reveal=False):
    s = tokens[token]
    return {"token": token if reveal else "[REDACTED]", "key": key(token),
            "cidr_whitelist": s["cidr_whitelist"], "created": s["created"],
            "updated": s["created"], "readonly": s["readonly"]}


issue(sys.argv[1])


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, body=None, headers=()):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        for h in headers:
            self.send_header(*h)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def caller(self):
        auth = self.headers.get("Authorization") or ""
        t = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        if t in tokens and tokens[t]["active"]:
            return t
        self.reply(401, {"error": "unauthorized", "ok": False})
        return None

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/_tokens":
            return self.reply(200, [{"token": t, "active": s["active"], "expires_at": ""}
                                    for t, s in tokens.items()])
        if url.path != "/-/npm/v1/tokens":
            return self.reply(404, {"error": "not found"})
        if not self.caller():
            return
        q = urllib.parse.parse_qs(url.query)
        try:
            per_page = int(q.get("perPage", ["10"])[0])
            page = int(q.get("page", ["0"])[0])
        except ValueError:
            return self.reply(400, {"message": "invalid page"})
        active = [t for t, s in tokens.items() if s["active"]]
        if not 1 <= per_page <= 9999 or page < 0 or (page and page * per_page >= len(active)):
            return self.reply(400, {"message": "invalid or out of range page"})
        body = {"total": len(active),
                "objects": [shown(t) for t in active[page * per_page:(page + 1) * per_page]],
                "urls": {}}
        if (page + 1) * per_page < len(active):
            host = "http://%s:%d" % self.server.server_address
            body["urls"]["next"] = "%s/-/npm/v1/tokens?perPage=%d&page=%d" % (host, per_page, page + 1)
        self.reply(200, body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path != "/-/npm/v1/tokens":
            return self.reply(404, {"error": "not found"})
        if not self.caller():
            return
        try:
            req = json.loads(raw)
        except ValueError:
            return self.reply(400, {"message": "invalid body"})
        if req.get("password") != password:
            return self.reply(401, {"message": "invalid password", "ok": False})
        if seed is not None and self.headers.get("npm-otp") not in codes():
            return self.reply(401, {"error": "OTP required"}, [("www-authenticate", "OTP")])
        new = str(uuid.uuid4())
        issue(new, req.get("readonly"), req.get("cidr_whitelist"))
        self.reply(200, shown(new, reveal=True))

    def do_DELETE(self):
        prefix = "/-/npm/v1/tokens/token/"
        if not self.path.startswith(prefix):
            return self.reply(404, {"error": "not found"})
        if not self.caller():
            return
        which = urllib.parse.unquote(self.path[len(prefix):])
        for t, s in tokens.items():
            if s["active"] and which in (t, key(t)):
                s["active"] = False
                return self.reply(204)
        self.reply(404, {"error": "not found"})


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
