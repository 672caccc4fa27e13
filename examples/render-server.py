"""A render server that is not Node: Python's standard library only. Each page says how many
times it was rendered; /_renders?path=/news answers that count without rendering. Prints its
port on the first line of stdout."""
import http.server
import sys

renders = {}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.startswith("/_renders?path="):
            body = str(renders.get(self.path[len("/_renders?path="):], 0)).encode()
            self.send_response(200)
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        renders[self.path] = renders.get(self.path, 0) + 1
        body = f"<h1>{self.path} rendered by python, render {renders[self.path]}</h1>\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "public, max-age=60")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    sys.exit(0)
