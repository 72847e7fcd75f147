"""A sparse cargo registry on 127.0.0.1 that requires a token (auth-required), serving one crate,
`demo` 0.1.0, in its index.

usage: cargo_registry_server.py TOKEN
Prints the port on the first line of stdout, then serves until killed.
"""
import http.server, json, sys

token = sys.argv[1]


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.headers.get("Authorization") != token:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Cargo login_url="http://127.0.0.1/login"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        port = self.server.server_address[1]
        if self.path == "/index/config.json":
            body = json.dumps({"dl": f"http://127.0.0.1:{port}/dl",
                               "auth-required": True}).encode()
        elif self.path == "/index/de/mo/demo":
            body = json.dumps({"name": "demo", "vers": "0.1.0", "deps": [], "cksum": "0" * 64,
                               "features": {}, "yanked": False}).encode() + b"\n"
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
