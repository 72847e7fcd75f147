"""A GitLab instance's personal access tokens API on 127.0.0.1, as documented at
https://docs.gitlab.com/ee/api/personal_access_tokens.html ("Get single personal access token"
and "Rotate a personal access token" and "Revoke a personal access token", each "using a request
header", that is with the id `self`): the token goes in the PRIVATE-TOKEN header; rotating revokes
the token used and answers 200 with the new token's JSON (with `token`); an unknown, revoked or
expired token gets 401 {"message": "401 Unauthorized"}.

Project and group access tokens, as documented at
https://docs.gitlab.com/ee/api/project_access_tokens.html and
https://docs.gitlab.com/ee/api/group_access_tokens.html ("Rotate a project access token",
"Revoke a project access token", and the same for groups): POST
/projects/:id/access_tokens/:token_id/rotate answers 200 with the new token's JSON and revokes the
old one, DELETE /projects/:id/access_tokens/:token_id answers 204; `:id` is the ID or URL-encoded
path; an unknown token or one of another project gets 404. Such a token is a personal access token
of the project's bot user, so /personal_access_tokens/self knows it. So that a test sees which API
was used, each token is rotated only at its own kind's endpoint (403 at another's).

usage: gitlab_server.py TOKEN[,KIND,OWNER]...   (KIND: projects or groups; OWNER: its ID or path)
Prints the port on the first line of stdout, then serves until killed. GET /_tokens (no
authentication: the test's view of the instance) lists the tokens with their state.
"""
import datetime, http.server, json, re, secrets, sys, urllib.parse

tokens = {}
for n, arg in enumerate(sys.argv[1:], 1):
    token, _, owner = arg.partition(",")
    tokens[token] = {"id": n, "active": True, "expires_at": "2030-01-01",
                     "owner": tuple(owner.split(",", 1)) if owner else None}
next_id = [len(tokens) + 1]
OWNED = re.compile(r"^/api/v4/(projects|groups)/([^/]+)/access_tokens/(\d+)(/rotate)?$")


def info(t):
    s = tokens[t]
    return {"id": s["id"], "name": "ci", "revoked": not s["active"], "created_at":
            "2026-01-01T00:00:00.000Z", "scopes": ["api", "self_rotate"], "user_id": 7,
            "last_used_at": None, "active": s["active"], "expires_at": s["expires_at"]}


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def caller(self):
        t = self.headers.get("PRIVATE-TOKEN")
        if t in tokens and tokens[t]["active"]:
            return t
        self.reply(401, {"message": "401 Unauthorized"})
        return None

    def rotate(self, t, form):
        tokens[t]["active"] = False
        default = (datetime.date.today() + datetime.timedelta(days=7)).isoformat()
        new = "glpat-" + secrets.token_urlsafe(15)
        tokens[new] = {"id": next_id[0], "active": True, "owner": tokens[t]["owner"],
                       "expires_at": form.get("expires_at", [default])[0]}
        next_id[0] += 1
        self.reply(200, dict(info(new), token=new))

    def owned(self, rotate):
        """The token a project or group token route names, once the caller may act on it."""
        m = OWNED.match(self.path)
        if not m or bool(m.group(4)) != rotate:
            self.reply(404, {"message": "404 Not Found"})
            return None
        caller = self.caller()
        if not caller:
            return None
        owner = (m.group(1), urllib.parse.unquote(m.group(2)))
        for t, s in tokens.items():
            if s["id"] == int(m.group(3)) and s["owner"] == owner and s["active"] \
                    and tokens[caller]["owner"] == owner:
                return t
        self.reply(404, {"message": "404 Not Found"})
        return None

    def do_GET(self):
        if self.path == "/_tokens":
            return self.reply(200, [dict(token=t, **s) for t, s in tokens.items()])
        if self.path != "/api/v4/personal_access_tokens/self":
            return self.reply(404, {"message": "404 Not Found"})
        t = self.caller()
        if t:
            self.reply(200, info(t))

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        if self.path != "/api/v4/personal_access_tokens/self/rotate":
            t = self.owned(rotate=True)
            if t:
                self.rotate(t, form)
            return
        t = self.caller()
        if not t:
            return
        if tokens[t]["owner"]:
            return self.reply(403, {"message": "403 Forbidden"})
        self.rotate(t, form)

    def do_DELETE(self):
        if self.path != "/api/v4/personal_access_tokens/self":
            t = self.owned(rotate=False)
            if t:
                tokens[t]["active"] = False
                self.reply(204)
            return
        t = self.caller()
        if t:
            tokens[t]["active"] = False
            self.reply(204)


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
