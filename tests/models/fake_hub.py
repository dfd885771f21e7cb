"""A stand-in for the Hugging Face hub's file endpoint, for HF_ENDPOINT: nothing reaches the network.

It answers `HEAD` and `GET /{org}/{name}/resolve/{revision}/{filename}` the way huggingface_hub 1.x
expects (huggingface_hub/file_download.py, get_hf_file_metadata and _get_metadata_or_catch_error):
`X-Repo-Commit` (the commit), `ETag` (the file's hash, quoted) and `Content-Length`; errors carry the
`X-Error-Code` that huggingface_hub/utils/_http.py turns into its exceptions: `RepoNotFound` (401, as
the hub answers for a missing repo without a token), `GatedRepo` (401 without the token that has
access), `EntryNotFound` (404, with the commit, for a file the repo lacks).
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHub:
    def __init__(self):
        self.repos: dict[str, dict[str, bytes]] = {}
        self.gated: dict[str, str] = {}  # repo id -> the token that has access
        self.requests: list[tuple[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, repo_id: str, files: dict[str, dict | bytes], gated_token: str | None = None) -> None:
        self.repos[repo_id] = {name: body if isinstance(body, bytes) else json.dumps(body).encode()
                               for name, body in files.items()}
        if gated_token:
            self.gated[repo_id] = gated_token

    def commit(self, repo_id: str) -> str:
        return hashlib.sha1(repo_id.encode()).hexdigest()

    def __enter__(self) -> "FakeHub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def do_HEAD(self):
            self.answer(body=False)

        def do_GET(self):
            self.answer(body=True)

        def answer(self, body: bool) -> None:
            hub.requests.append((self.command, self.path))
            parts = self.path.split("?")[0].strip("/").split("/")
            if len(parts) < 5 or parts[2] != "resolve":
                return self.error(404, "RepoNotFound", "Not found")
            repo_id, filename = "/".join(parts[:2]), "/".join(parts[4:])
            files = hub.repos.get(repo_id)
            if files is None:
                return self.error(401, "RepoNotFound", "Repository not found")
            if repo_id in hub.gated and self.headers.get("authorization") != f"Bearer {hub.gated[repo_id]}":
                return self.error(401, "GatedRepo", f"Access to model {repo_id} is restricted.")
            if filename not in files:
                return self.error(404, "EntryNotFound", f"{filename} does not exist", commit=hub.commit(repo_id))
            data = files[filename]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
            self.send_header("X-Repo-Commit", hub.commit(repo_id))
            self.end_headers()
            if body:
                self.wfile.write(data)

        def error(self, status: int, code: str, message: str, commit: str | None = None) -> None:
            data = json.dumps({"error": message}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            if commit:
                self.send_header("X-Repo-Commit", commit)
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(data)

    return Handler
