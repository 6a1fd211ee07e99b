"""A stand-in for the Hugging Face Hub on 127.0.0.1, and small checkpoints in each Hub layout to serve from it.

It answers the requests huggingface_hub's `snapshot_download` makes (read in its source):
    GET  /api/models/{repo}/revision/{rev}        repo info: the commit a branch or commit resolves to
    GET  /api/models/{repo}/tree/{rev}[?recursive] the files of a commit, with git blob ids and LFS sha256
    HEAD /{repo}/resolve/{rev}/{file}              X-Repo-Commit, ETag / X-Linked-Etag, Content-Length
    GET  /{repo}/resolve/{rev}/{file}              the bytes
Unknown repositories and revisions get 404 with the Hub's X-Error-Code header. Weight files are served as LFS files
(etag = sha256), others as git blobs (etag = git blob sha1), so the cache ends up laid out as with the real Hub.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import torch

from tubelet.model.checkpoints import save_model
from tubelet.model.videomae import VideoMAE

LFS_SUFFIXES = (".safetensors", ".bin", ".pth")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class StandInHub:
    """Repositories of commits (path → bytes) and branches, served over HTTP on 127.0.0.1:port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.commits: dict[str, dict[str, dict[str, bytes]]] = {}  # repo → sha → files
        self.branches: dict[str, dict[str, str]] = {}  # repo → branch → sha
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def publish(self, repo: str, files: dict[str, bytes], branch: str = "main") -> str:
        """A new commit of `files` on `branch`; returns its 40-hex sha."""
        sha = hashlib.sha1(repo.encode() + json.dumps(sorted((k, git_blob_id(v)) for k, v in files.items())).encode()
                           + str(len(self.commits.get(repo, {}))).encode()).hexdigest()
        self.commits.setdefault(repo, {})[sha] = dict(files)
        self.branches.setdefault(repo, {})[branch] = sha
        return sha

    def start(self) -> StandInHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                hub._answer(self, body=False)

            def do_GET(self) -> None:
                hub._answer(self, body=True)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ---- answering -------------------------------------------------------------------------------------
    def _resolve(self, repo: str, rev: str) -> tuple[int, str, str]:
        """(status, error code, sha)."""
        if repo not in self.commits:
            return 404, "RepoNotFound", ""
        sha = self.branches[repo].get(rev, rev)
        return (200, "", sha) if sha in self.commits[repo] else (404, "RevisionNotFound", "")

    def _answer(self, h: BaseHTTPRequestHandler, body: bool) -> None:
        path = unquote(urlsplit(h.path).path)
        self.requests.append(f"{h.command} {path}")
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] in ("revision", "tree"):
            repo, kind, rev = "/".join(parts[2:4]), parts[4], parts[5]
            status, code, sha = self._resolve(repo, rev)
            if status != 200:
                return self._send(h, status, b"{}", {"X-Error-Code": code}, body)
            files = self.commits[repo][sha]
            if kind == "revision":
                data = {"id": repo, "modelId": repo, "sha": sha, "private": False,
                        "siblings": [{"rfilename": f} for f in files]}
            else:
                data = [self._tree_entry(name, blob) for name, blob in files.items()]
            return self._send(h, 200, json.dumps(data).encode(), {"Content-Type": "application/json"}, body)
        if len(parts) >= 5 and parts[2] == "resolve":
            repo, rev, name = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
            status, code, sha = self._resolve(repo, rev)
            if status != 200 or name not in self.commits[repo][sha]:
                return self._send(h, 404, b"", {"X-Error-Code": code or "EntryNotFound"}, body)
            blob = self.commits[repo][sha][name]
            etag = hashlib.sha256(blob).hexdigest() if name.endswith(LFS_SUFFIXES) else git_blob_id(blob)
            headers = {"X-Repo-Commit": sha, "ETag": f'"{etag}"', "Content-Type": "application/octet-stream"}
            if name.endswith(LFS_SUFFIXES):
                headers["X-Linked-Etag"] = f'"{etag}"'
                headers["X-Linked-Size"] = str(len(blob))
            return self._send(h, 200, blob, headers, body)
        self._send(h, 404, b"", {}, body)

    @staticmethod
    def _tree_entry(name: str, blob: bytes) -> dict:
        entry = {"type": "file", "path": name, "size": len(blob), "oid": git_blob_id(blob)}
        if name.endswith(LFS_SUFFIXES):
            entry["lfs"] = {"oid": hashlib.sha256(blob).hexdigest(), "size": len(blob), "pointerSize": 134}
        return entry

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str], body: bool) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if body:
            h.wfile.write(data)


# ---- checkpoints in each Hub layout ---------------------------------------------------------------------
def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def transformers_files(model: VideoMAE, tmp: Path) -> dict[str, bytes]:
    """The files of a transformers VideoMAE repository (config.json + model.safetensors) holding `model`."""
    return folder_files(save_model(model, tmp / f"hf-{id(model)}", format="transformers"))


def videomae_v2_files(model: VideoMAE) -> dict[str, bytes]:
    """The files of an OpenGVLab VideoMAE v2 Hub repository holding `model` (an encoder that norms after pooling):
    config.json with the official constructor arguments under "model_config", the official fine-tune key layout
    under "model.", and the repository's own modelling code, which must never be fetched."""
    from safetensors.torch import save

    cfg = model.config
    sd = {}
    for k, v in model.state_dict().items():
        key = k[len("encoder."):] if k.startswith("encoder.") else k
        sd["model." + key] = v.contiguous()
    config = {
        "model_type": "VideoMAEv2_Base", "architectures": ["VideoMAEv2_Base"],
        "auto_map": {"AutoModel": "modeling_videomaev2.VideoMAEv2", "AutoConfig": "modeling_config.VideoMAEv2Config"},
        "model_config": {
            "img_size": cfg.image_size[0], "patch_size": cfg.patch_size, "in_chans": cfg.in_chans, "num_classes": 0,
            "embed_dim": cfg.embed_dim, "depth": cfg.depth, "num_heads": cfg.num_heads,
            "mlp_ratio": cfg.mlp_dim / cfg.embed_dim, "qkv_bias": cfg.qkv_bias, "qk_scale": None, "drop_rate": 0.0,
            "attn_drop_rate": 0.0, "drop_path_rate": 0.0, "norm_layer": "nn.LayerNorm",
            "layer_norm_eps": cfg.norm_eps, "init_values": 0.0, "use_learnable_pos_emb": False,
            "tubelet_size": cfg.tubelet_size, "use_mean_pooling": True, "with_cp": False,
            "num_frames": cfg.num_frames, "cos_attn": False,
        },
        "transformers_version": "4.38.0",
    }
    return {"config.json": json.dumps(config, indent=2).encode(), "model.safetensors": save(sd),
            "modeling_videomaev2.py": b"raise SystemExit('the repository code must never be fetched or run')\n"}


def seeded(model_fn, seed: int) -> VideoMAE:
    torch.manual_seed(seed)
    return model_fn().eval()
