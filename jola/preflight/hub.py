"""The Hugging Face hub as preflight sees it: offline, unreachable or online; the local cache;
downloads.

Nothing here waits long on a hub that cannot be reached: :func:`hub_state` sends one request
with a short timeout before any other hub call (``huggingface_hub`` retries a failed connection
for about 25 seconds per call), and an unreachable hub is then treated like offline mode: only
the cache counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jola.profiles import hub_is_offline

PROBE_TIMEOUT_S = 5.0
ETAG_TIMEOUT_S = 10.0
# files a run never reads: other frameworks' weights, the original (non-HF) checkpoints
IGNORED_FILES = [
    "original/*",
    "*.pth",
    "*.pt",
    "*.gguf",
    "*.onnx",
    "*.onnx_data",
    "onnx/*",
    "*.msgpack",
    "*.h5",
    "*.tflite",
    "*.ot",
    "coreml/*",
    "openvino/*",
]
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "vocab.json",
    "vocab.txt",
)


@dataclass(frozen=True)
class HubState:
    """``mode`` is ``offline`` (HF_HUB_OFFLINE), ``unreachable`` or ``online``."""

    mode: str
    detail: str

    @property
    def online(self) -> bool:
        return self.mode == "online"

    def why_local_only(self) -> str:
        return "HF_HUB_OFFLINE=1" if self.mode == "offline" else "the hub is unreachable"


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def hub_state(timeout: float = PROBE_TIMEOUT_S) -> HubState:
    """Whether the hub can be used: offline mode, then one short request to the endpoint."""
    if hub_is_offline():
        return HubState("offline", "HF_HUB_OFFLINE=1")
    from huggingface_hub.utils import get_session

    endpoint = _endpoint()
    try:
        response = get_session().head(endpoint, timeout=timeout, follow_redirects=True)
    except Exception as err:  # connection refused, DNS, timeout, proxy: all mean unreachable
        return HubState("unreachable", f"{endpoint}: {type(err).__name__}: {err}"[:160])
    if response.status_code >= 500:
        return HubState("unreachable", f"{endpoint} answered HTTP {response.status_code}")
    token = "a token is set" if _token() else "no token (gated models need HF_TOKEN)"
    return HubState("online", f"{endpoint} reachable, {token}")


def _token() -> str | None:
    from huggingface_hub import get_token

    return get_token()


def hub_cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def datasets_cache_dir() -> Path:
    import datasets.config

    return Path(datasets.config.HF_DATASETS_CACHE)


def cached_snapshot(repo_id: str, revision: str | None, repo_type: str = "model") -> Path | None:
    """The cached snapshot folder of ``repo_id`` at ``revision`` (None: not cached). Never
    touches the network; whether the folder is complete is :func:`hf_folder_problem`'s to say."""
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            repo_id,
            repo_type=repo_type,
            revision=revision,
            local_files_only=True,
            allow_patterns=["config.json"] if repo_type == "model" else None,
        )
    except Exception:  # not cached, an invalid id, an incomplete snapshot
        return None
    return Path(folder)


def hf_folder_problem(folder: Path, need_tokenizer: bool = True) -> str | None:
    """What keeps ``folder`` from loading with ``from_pretrained`` (None: nothing found)."""
    if not (folder / "config.json").is_file():
        return f"{folder} has no config.json"
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        import json

        shards = set(json.loads(index.read_text()).get("weight_map", {}).values())
        missing = sorted(s for s in shards if not (folder / s).is_file())
        if missing:
            return (
                f"{folder} lacks {len(missing)} of {len(shards)} weight shards ({missing[0]}, ...)"
            )
    elif not (any(folder.glob("*.safetensors")) or any(folder.glob("pytorch_model*.bin"))):
        return f"{folder} has no weights (*.safetensors or pytorch_model*.bin)"
    if need_tokenizer and not any((folder / name).is_file() for name in TOKENIZER_FILES):
        return f"{folder} has no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...)"
    return None


def describe_hub_error(repo_id: str, err: BaseException, repo_type: str = "model") -> str:
    """One line for an access error: gated, not found, bad revision, or other."""
    from huggingface_hub.errors import (
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    page = f"https://huggingface.co/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"
    if isinstance(err, GatedRepoError):
        who = "with the current token" if _token() else "without a token"
        return (
            f"{repo_id} is gated and not accessible {who}: accept its licence at {page} and "
            "set HF_TOKEN (or `hf auth login`)"
        )
    if isinstance(err, RevisionNotFoundError):
        return f"{repo_id} has no such revision on the hub"
    if isinstance(err, RepositoryNotFoundError):
        return f"{repo_id} is not on the hub (or is private: set HF_TOKEN)"
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{repo_id}: {type(err).__name__}: {first}"[:240]


def remote_config(repo_id: str, revision: str | None) -> Path:
    """Download only ``config.json`` (this checks access, gated models included)."""
    from huggingface_hub import hf_hub_download

    return Path(
        hf_hub_download(repo_id, "config.json", revision=revision, etag_timeout=ETAG_TIMEOUT_S)
    )


def _wanted(path: str, ignored: list[str]) -> bool:
    from fnmatch import fnmatch

    return not any(fnmatch(path, pattern) for pattern in ignored)


def ignored_files_for(files: list[str]) -> list[str]:
    """IGNORED_FILES, plus the PyTorch .bin weights when the repo has safetensors."""
    if any(f.endswith(".safetensors") for f in files):
        return [*IGNORED_FILES, "*.bin"]
    return list(IGNORED_FILES)


def remote_size(repo_id: str, revision: str | None, repo_type: str = "model") -> int | None:
    """Bytes that :func:`download_snapshot` would fetch (None: the hub did not say)."""
    from huggingface_hub import HfApi

    api = HfApi()
    info_call = api.dataset_info if repo_type == "dataset" else api.model_info
    try:
        info = info_call(repo_id, revision=revision, files_metadata=True, timeout=ETAG_TIMEOUT_S)
    except Exception:
        return None
    siblings = info.siblings or []
    ignored = ignored_files_for([s.rfilename for s in siblings])
    sizes = [s.size for s in siblings if _wanted(s.rfilename, ignored)]
    if any(size is None for size in sizes):
        return None
    return sum(sizes)


def download_snapshot(repo_id: str, revision: str | None) -> Path:
    """Fetch what ``from_pretrained`` reads of a model repo into the HF cache."""
    from huggingface_hub import HfApi, snapshot_download

    files = HfApi().list_repo_files(repo_id, revision=revision)
    return Path(
        snapshot_download(
            repo_id,
            revision=revision,
            ignore_patterns=ignored_files_for(files),
            etag_timeout=ETAG_TIMEOUT_S,
        )
    )
